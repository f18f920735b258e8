/*
 * demo.h - `wabot-worker demo`: the real worker against librdkafka's mock
 * Kafka cluster, started in-process, on the sample recording (demo.c).
 */
#ifndef WB_DEMO_H
#define WB_DEMO_H

/* Returns the exit code: 0 ok, 1 failure, 2 bad configuration. */
int demo_main(int argc, char **argv, char **envp);

#endif /* WB_DEMO_H */
