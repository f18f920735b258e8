/*
 * free_port.h - a loopback TCP port for a server a test starts (redis-server,
 * the worker's HTTP endpoint). The kernel hands out a free one; it is
 * closed again at once, so another process could take it first (rare; the
 * server then fails to bind and the test says so). Owns nothing.
 */
#ifndef WB_TEST_FREE_PORT_H
#define WB_TEST_FREE_PORT_H

/* A port the kernel just handed out on 127.0.0.1, or -1. */
int free_port(void);

#endif /* WB_TEST_FREE_PORT_H */
