/* cli.h - the stylenet command line: one file per verb, each `int cmd_VERB(int argc, char **argv)`
 * returning the process exit status (0 ok, 1 failure, 2 usage). */
#ifndef STYLENET_CLI_H
#define STYLENET_CLI_H

int cmd_predict(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_data(int argc, char **argv);
int cmd_lr_find(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_report(int argc, char **argv);

/* prints "stylenet: <message>" to stderr and returns 1 */
int cli_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* sets the OpenMP thread count from --threads (0 = all cores) */
void cli_set_threads(int n);
#endif
