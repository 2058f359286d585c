/* openmp.h - how a stylenet program sets up OpenMP before it starts.
 *
 * libgomp's idle threads spin at every barrier (up to GOMP_SPINCOUNT = 300000 iterations, when
 * neither OMP_WAIT_POLICY nor GOMP_SPINCOUNT is set) before they sleep.  On a quiet machine that
 * costs nothing; when another process takes one of the cores, the spinning thread burns the time
 * slice the descheduled one needs, and every barrier waits for the scheduler: measured on the
 * project machine (2 cores) with one competing training process, a resnet34 train step at 128 px
 * ran at 4.3 images/s with the default and at 17.5 with GOMP_SPINCOUNT=10000, while on the quiet
 * machine the two settings measured the same within run-to-run noise (41-47 images/s).
 * libgomp reads the setting once, when it is loaded, so it cannot be changed from inside the
 * process: sn_openmp_setup() re-executes the program with GOMP_SPINCOUNT=10000 when the user
 * has set neither variable (a setting of the user's is left alone).  Call it first in main().
 * It returns when there is nothing to do or the re-execution failed (the program then carries on
 * with libgomp's default).
 */
#ifndef STYLENET_OPENMP_H
#define STYLENET_OPENMP_H
void sn_openmp_setup(char **argv);
#endif
