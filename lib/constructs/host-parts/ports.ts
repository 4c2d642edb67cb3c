/** Ports a host listens on. The app slots (8081/8082) bind to 127.0.0.1 and are never opened. */
export const HOST_PORTS = { http: 80, https: 443, jenkins: 8080, ssh: 22 } as const;
