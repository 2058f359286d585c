/* fault.h - named points where the fault tests (tests/faults/) kill the process.
 *
 * sn_fault_point(name) does nothing unless the environment variable STYLENET_FAULT_KILL holds
 * "NAME:N" (N >= 1): then the N-th time the process passes the point NAME it sends itself
 * SIGKILL, as `kill -9` from outside would, but at a moment fixed by the test.  The points are
 *   "step"   a training step, after the backward pass and before the optimiser's update
 *   "valid"  a validation batch, after its forward pass
 *   "write"  an atomic file write (core/file.h), after the contents went to the temporary file
 *            and before it is flushed and renamed into place
 * The variable is read once; without it a point costs a load and a branch.  Thread-safe (the
 * count is atomic).
 */
#ifndef STYLENET_FAULT_H
#define STYLENET_FAULT_H
void sn_fault_point(const char *name);
#endif
