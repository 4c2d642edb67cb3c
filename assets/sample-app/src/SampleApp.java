package bluegreen.sample;

import com.sun.net.httpserver.Headers;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.lang.management.ManagementFactory;
import java.math.BigDecimal;
import java.net.BindException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.UnknownHostException;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.OffsetDateTime;
import java.time.format.DateTimeFormatter;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.Locale;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A dependency-free stand-in for a Spring Boot web service, used to exercise blue/green deploys.
 *
 * <p>It behaves like the parts of Spring Boot a deploy cares about: Spring-style command line
 * arguments ({@code --server.port=8081}), a startup delay before the port is bound (Tomcat only
 * listens at the end of startup), {@code /actuator/health} (optionally DOWN for a while after the
 * port opens, like readiness that waits for a database), the "Started ... in X seconds" log
 * line, and graceful shutdown on SIGTERM (health DOWN, in-flight requests finish, then exit 0).
 *
 * <p>The build script bakes the version and a behaviour into {@code bluegreen-sample.properties}
 * inside the jar, so that a bad release is a real jar that misbehaves: {@code never-healthy},
 * {@code exit-at-once}, {@code error-rate:P} or {@code die-after-ms:N}. Every version answers
 * {@code /fail} with 500, as an app does to a request it cannot handle.
 */
public final class SampleApp {

    static final String APP_NAME = "bluegreen-sample";
    static final String RESOURCE = "/bluegreen-sample.properties";
    static final String LOGGER = "bluegreen.sample.SampleApp";
    static final int POOL_THREADS = 200;
    static final int BACKLOG = 1024;
    static final long MAX_SLOW_MS = 60_000;
    static final long DRAIN_TIMEOUT_MS = 30_000;
    static final long DRAIN_POLL_MS = 10;

    static final long PID = ProcessHandle.current().pid();
    static final DateTimeFormatter TIMESTAMP =
            DateTimeFormatter.ofPattern("yyyy-MM-dd'T'HH:mm:ss.SSSXXX", Locale.ROOT);

    // ---------------------------------------------------------------------------------------
    // Configuration

    enum Kind { NORMAL, NEVER_HEALTHY, EXIT_AT_ONCE, ERROR_RATE, DIE_AFTER_MS }

    /**
     * A baked behaviour. For {@code error-rate:P}, P is kept as the exact fraction
     * {@code numerator / denominator} so that the share of failed requests is exact.
     */
    record Behaviour(Kind kind, String text, long numerator, long denominator, long dieAfterMs) {

        static Behaviour parse(String text) {
            String t = text.trim();
            if (t.equals("normal")) {
                return new Behaviour(Kind.NORMAL, t, 0, 1, 0);
            }
            if (t.equals("never-healthy")) {
                return new Behaviour(Kind.NEVER_HEALTHY, t, 0, 1, 0);
            }
            if (t.equals("exit-at-once")) {
                return new Behaviour(Kind.EXIT_AT_ONCE, t, 0, 1, 0);
            }
            if (t.startsWith("error-rate:")) {
                String p = t.substring("error-rate:".length());
                if (!p.matches("(0(\\.[0-9]{1,9})?|1(\\.0{1,9})?)")) {
                    throw new IllegalArgumentException(
                            "error-rate needs a fraction between 0 and 1 such as 0.25, got '" + p + "'");
                }
                BigDecimal fraction = new BigDecimal(p);
                return new Behaviour(Kind.ERROR_RATE, t, fraction.unscaledValue().longValueExact(),
                        BigDecimal.TEN.pow(fraction.scale()).longValueExact(), 0);
            }
            if (t.startsWith("die-after-ms:")) {
                String n = t.substring("die-after-ms:".length());
                if (!n.matches("[0-9]{1,9}")) {
                    throw new IllegalArgumentException(
                            "die-after-ms needs a whole number of milliseconds, got '" + n + "'");
                }
                return new Behaviour(Kind.DIE_AFTER_MS, t, 0, 1, Long.parseLong(n));
            }
            throw new IllegalArgumentException("unknown behaviour '" + text + "' (expected normal, "
                    + "never-healthy, exit-at-once, error-rate:P or die-after-ms:N)");
        }
    }

    /**
     * Spring-style property lookup: {@code --key=value} arguments first, then {@code -Dkey=value}
     * system properties, then environment variables in Spring's relaxed form
     * ({@code server.port} is {@code SERVER_PORT}). Other arguments are ignored, as Spring does.
     */
    static final class Settings {
        private final Map<String, String> args = new HashMap<>();

        Settings(String[] argv) {
            for (String arg : argv) {
                if (arg.startsWith("--") && arg.indexOf('=') > 2) {
                    int eq = arg.indexOf('=');
                    args.put(arg.substring(2, eq), arg.substring(eq + 1));
                }
            }
        }

        String get(String key, String fallback) {
            String value = args.get(key);
            if (value == null) {
                value = System.getProperty(key);
            }
            if (value == null) {
                value = System.getenv(key.replace('.', '_').replace("-", "").toUpperCase(Locale.ROOT));
            }
            return value == null ? fallback : value;
        }
    }

    // ---------------------------------------------------------------------------------------
    // Logging: one line per event, Spring Boot's console layout.

    static void log(String level, String message) {
        String thread = Thread.currentThread().getName();
        if (thread.length() > 15) {
            thread = thread.substring(thread.length() - 15);
        }
        String line = TIMESTAMP.format(OffsetDateTime.now()) + ' ' + padLeft(level, 5) + ' ' + PID
                + " --- [" + padLeft(thread, 15) + "] " + LOGGER + " : " + message;
        synchronized (System.out) {
            System.out.println(line);
            System.out.flush();
        }
    }

    static String padLeft(String s, int width) {
        return s.length() >= width ? s : " ".repeat(width - s.length()) + s;
    }

    /** Milliseconds as seconds with three decimals, without a locale ("0.412"). */
    static String seconds(long millis) {
        return millis / 1000 + "." + String.valueOf(1000 + millis % 1000).substring(1);
    }

    /** Spring Boot's "APPLICATION FAILED TO START" on one line, then exit 1 without shutdown hooks. */
    static void failToStart(String description) {
        log("ERROR", "APPLICATION FAILED TO START: " + description);
        System.out.flush();
        Runtime.getRuntime().halt(1);
    }

    // ---------------------------------------------------------------------------------------
    // State

    private final long mainStartNanos;
    private final String version;
    private final String profile;
    private final Behaviour behaviour;
    private final AtomicInteger inFlight = new AtomicInteger();
    /** Requests answered on "/", for tests that check who called the app (GET /stats). */
    private final AtomicLong rootRequests = new AtomicLong();
    private final AtomicLong errorRateRequests = new AtomicLong();
    private final Object lock = new Object();
    /** Health: UP once started and ready (never for never-healthy), DOWN again from the start of shutdown. */
    private volatile boolean up;
    private HttpServer server; // guarded by lock
    private ExecutorService pool; // guarded by lock
    private boolean stopping; // guarded by lock
    private volatile int port;

    private SampleApp(long mainStartNanos, String version, String profile, Behaviour behaviour) {
        this.mainStartNanos = mainStartNanos;
        this.version = version;
        this.profile = profile;
        this.behaviour = behaviour;
    }

    public static void main(String[] argv) throws InterruptedException {
        long mainStartNanos = System.nanoTime();
        Settings settings = new Settings(argv);
        Properties baked = loadBakedProperties();
        String version = baked.getProperty("version", "0.0.0-SNAPSHOT");
        String profile = settings.get("spring.profiles.active", "default");
        logRequests = Boolean.parseBoolean(settings.get("bluegreen.log-requests", "false"));

        log("INFO", "Starting SampleApp v" + version + " using Java " + System.getProperty("java.version")
                + " with PID " + PID + " (profile " + profile + ")");
        if (profile.equals("default")) {
            log("INFO", "No active profile set, falling back to 1 default profile: \"default\"");
        } else {
            log("INFO", "The following 1 profile is active: \"" + profile + "\"");
        }

        Behaviour behaviour;
        int port;
        String address;
        long startDelayMs;
        long readyDelayMs;
        try {
            behaviour = Behaviour.parse(baked.getProperty("behaviour", "normal"));
            port = parseLong("server.port", settings.get("server.port", "8080"), 0, 65_535).intValue();
            address = settings.get("server.address", "0.0.0.0");
            startDelayMs = parseLong("bluegreen.start-delay-ms",
                    settings.get("bluegreen.start-delay-ms", baked.getProperty("start-delay-ms", "0")),
                    0, 3_600_000L);
            readyDelayMs = parseLong("bluegreen.ready-delay-ms",
                    settings.get("bluegreen.ready-delay-ms", baked.getProperty("ready-delay-ms", "0")),
                    0, 3_600_000L);
        } catch (IllegalArgumentException e) {
            failToStart(e.getMessage());
            return;
        }
        if (behaviour.kind() == Kind.EXIT_AT_ONCE) {
            failToStart("this build has behaviour exit-at-once, a simulated bad release that fails "
                    + "before its web server starts.");
            return;
        }

        SampleApp app = new SampleApp(mainStartNanos, version, profile, behaviour);
        Thread hook = new Thread(app::shutdown, "shutdown");
        Runtime.getRuntime().addShutdownHook(hook);
        app.start(address, port, startDelayMs, readyDelayMs);
    }

    static Properties loadBakedProperties() {
        Properties p = new Properties();
        try (InputStream in = SampleApp.class.getResourceAsStream(RESOURCE)) {
            if (in != null) {
                p.load(new java.io.InputStreamReader(in, StandardCharsets.UTF_8));
            }
        } catch (IOException e) {
            failToStart("cannot read " + RESOURCE + ": " + e);
        }
        return p;
    }

    static Long parseLong(String key, String value, long min, long max) {
        try {
            long n = Long.parseLong(value.trim());
            if (n >= min && n <= max) {
                return n;
            }
        } catch (NumberFormatException e) {
            // reported below
        }
        throw new IllegalArgumentException(
                "invalid " + key + " '" + value + "': expected a whole number from " + min + " to " + max);
    }

    // ---------------------------------------------------------------------------------------
    // Startup and shutdown

    private void start(String address, int requestedPort, long startDelayMs, long readyDelayMs)
            throws InterruptedException {
        if (startDelayMs > 0) {
            // A slow Spring context: the port is bound only at the end of startup, like Tomcat.
            log("INFO", "Initializing application context (simulated start delay " + startDelayMs + " ms)");
            Thread.sleep(startDelayMs);
        }
        // Without TCP_NODELAY, keep-alive responses can wait for a delayed ACK (about 40 ms).
        if (System.getProperty("sun.net.httpserver.nodelay") == null) {
            System.setProperty("sun.net.httpserver.nodelay", "true");
        }

        synchronized (lock) {
            if (stopping) {
                return; // SIGTERM during startup: the shutdown hook ends the JVM
            }
            HttpServer srv;
            try {
                srv = HttpServer.create(new InetSocketAddress(InetAddress.getByName(address), requestedPort), BACKLOG);
            } catch (BindException e) {
                String reason = String.valueOf(e.getMessage());
                failToStart(reason.toLowerCase(Locale.ROOT).contains("in use")
                        ? "Web server failed to start. Port " + requestedPort + " was already in use."
                        : "Web server failed to start on " + address + ":" + requestedPort + ": " + reason);
                return;
            } catch (UnknownHostException e) {
                failToStart("invalid server.address '" + address + "': " + e.getMessage());
                return;
            } catch (IOException e) {
                failToStart("Web server failed to start on " + address + ":" + requestedPort + ": " + e);
                return;
            }
            srv.createContext("/", this::handle);
            pool = Executors.newFixedThreadPool(POOL_THREADS, daemonThreads("http-worker-"));
            srv.setExecutor(pool);
            // Health stays DOWN for the ready delay too: a Spring Boot app whose readiness waits for
            // caches or a database opens its port before it accepts traffic.
            up = behaviour.kind() != Kind.NEVER_HEALTHY && readyDelayMs == 0;
            srv.start();
            server = srv;
            port = srv.getAddress().getPort();
            log("INFO", "Web server started on port " + port + " (http) at " + address);

            if (behaviour.kind() == Kind.NEVER_HEALTHY) {
                log("WARN", "Health is DOWN and will stay DOWN: this build has behaviour never-healthy, "
                        + "a simulated bad release");
                return;
            }
            long inMillis = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - mainStartNanos);
            long runningMillis = Math.max(ManagementFactory.getRuntimeMXBean().getUptime(), inMillis);
            log("INFO", "Started SampleApp in " + seconds(inMillis) + " seconds (process running for "
                    + seconds(runningMillis) + ")");
            if (up) {
                logReady();
            } else {
                log("INFO", "Readiness is REFUSING_TRAFFIC for " + readyDelayMs
                        + " ms (simulated bluegreen.ready-delay-ms): health is DOWN until then");
            }
        }
        if (readyDelayMs > 0) {
            becomeReadyAfter(readyDelayMs);
        }

        if (behaviour.kind() == Kind.DIE_AFTER_MS) {
            Thread killer = new Thread(() -> {
                try {
                    Thread.sleep(behaviour.dieAfterMs());
                } catch (InterruptedException e) {
                    return;
                }
                log("ERROR", "Simulated crash: this build has behaviour " + behaviour.text()
                        + ", halting the JVM with status 1");
                Runtime.getRuntime().halt(1);
            }, "die-after-ms");
            killer.setDaemon(true);
            killer.start();
        }
    }

    /** Spring Boot's line when the app starts to accept traffic: where its start-to-ready ends. */
    private static void logReady() {
        log("INFO", "Application availability state ReadinessState changed to ACCEPTING_TRAFFIC");
    }

    private void becomeReadyAfter(long readyDelayMs) {
        Thread ready = new Thread(() -> {
            try {
                Thread.sleep(readyDelayMs);
            } catch (InterruptedException e) {
                return;
            }
            synchronized (lock) {
                if (stopping) {
                    return; // health stays DOWN once shutdown began
                }
                up = true;
                logReady();
            }
        }, "readiness");
        ready.setDaemon(true);
        ready.start();
    }

    /**
     * The JVM shutdown hook (SIGTERM, SIGINT): health DOWN, wait for in-flight requests, stop.
     * Requests that arrive meanwhile are still served. Ends the JVM with status 0.
     */
    private void shutdown() {
        HttpServer srv;
        ExecutorService workers;
        synchronized (lock) {
            stopping = true;
            up = false;
            srv = server;
            workers = pool;
        }
        log("INFO", "Stopping SampleApp: waiting for " + inFlight.get() + " in-flight request(s)");
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(DRAIN_TIMEOUT_MS);
        while (inFlight.get() > 0) {
            if (System.nanoTime() - deadline >= 0) {
                log("WARN", "Gave up after " + DRAIN_TIMEOUT_MS / 1000 + " s waiting for " + inFlight.get()
                        + " in-flight request(s)");
                break;
            }
            try {
                Thread.sleep(DRAIN_POLL_MS);
            } catch (InterruptedException e) {
                break;
            }
        }
        if (srv != null) {
            srv.stop(0); // never more than 0: HttpServer.stop(n) waits the full n seconds even when idle
        }
        if (workers != null) {
            workers.shutdownNow();
        }
        log("INFO", "Stopped SampleApp");
        System.out.flush();
        // Exit 0 rather than the JVM's 143 for SIGTERM: this is a clean, graceful stop.
        Runtime.getRuntime().halt(0);
    }

    static ThreadFactory daemonThreads(String prefix) {
        AtomicInteger n = new AtomicInteger();
        return r -> {
            Thread t = new Thread(r, prefix + n.incrementAndGet());
            t.setDaemon(true);
            return t;
        };
    }

    // ---------------------------------------------------------------------------------------
    // HTTP

    /**
     * bluegreen.log-requests=true: one numbered line per request ("Request 17 GET /"), numbered in
     * the order the lines are written, so that a test can tell a lost, repeated or reordered line.
     */
    static volatile boolean logRequests;
    static long requestLines; // guarded by System.out

    static void logRequest(HttpExchange ex) {
        synchronized (System.out) {
            log("INFO", "Request " + ++requestLines + " " + ex.getRequestMethod() + " " + ex.getRequestURI().getRawPath());
        }
    }

    private void handle(HttpExchange ex) {
        if (logRequests) {
            logRequest(ex);
        }
        inFlight.incrementAndGet();
        try {
            route(ex);
        } catch (IOException e) {
            // The client went away; nothing to answer.
        } catch (RuntimeException | InterruptedException e) {
            if (e instanceof InterruptedException) {
                Thread.currentThread().interrupt();
            }
            log("ERROR", "Request " + ex.getRequestMethod() + " " + ex.getRequestURI() + " failed: " + e);
            try {
                sendJson(ex, 500, error(500, "Internal Server Error", ex));
            } catch (IOException | RuntimeException ignored) {
                // headers already sent, or the client went away
            }
        } finally {
            ex.close();
            inFlight.decrementAndGet();
        }
    }

    private void route(HttpExchange ex) throws IOException, InterruptedException {
        String path = ex.getRequestURI().getRawPath();
        switch (path) {
            case "/" -> {
                if (allow(ex, "GET", "HEAD") && !injectedError(ex)) {
                    rootRequests.incrementAndGet();
                    sendJson(ex, 200, info(null));
                }
            }
            case "/stats" -> {
                if (allow(ex, "GET", "HEAD")) {
                    sendJson(ex, 200, "{\"rootRequests\":" + rootRequests.get() + "}");
                }
            }
            case "/profile" -> {
                if (allow(ex, "GET", "HEAD")) {
                    send(ex, 200, "text/plain; charset=utf-8", profile);
                }
            }
            case "/actuator/health" -> {
                if (allow(ex, "GET", "HEAD")) {
                    boolean healthy = up;
                    sendJson(ex, healthy ? 200 : 503, healthy ? "{\"status\":\"UP\"}" : "{\"status\":\"DOWN\"}");
                }
            }
            case "/slow" -> {
                if (allow(ex, "GET", "HEAD")) {
                    slow(ex);
                }
            }
            case "/echo" -> {
                if (allow(ex, "POST")) {
                    echo(ex);
                }
            }
            // A request no version of the app can serve (what a broken or hostile client sends):
            // its 500 says nothing about the release that answers it.
            case "/fail" -> sendJson(ex, 500, error(500, "Internal Server Error", ex));
            default -> sendJson(ex, 404, error(404, "Not Found", ex));
        }
    }

    private boolean allow(HttpExchange ex, String... methods) throws IOException {
        String method = ex.getRequestMethod();
        for (String m : methods) {
            if (m.equals(method)) {
                return true;
            }
        }
        ex.getResponseHeaders().set("Allow", String.join(", ", methods));
        sendJson(ex, 405, error(405, "Method Not Allowed", ex));
        return false;
    }

    /**
     * For error-rate:P, answers 500 to an exact share P of requests to {@code /} and {@code /echo}:
     * request number n (from 1) fails when floor(n * P) grows, so after n requests exactly
     * floor(n * P) have failed (for 0.25: requests 4, 8, 12 and so on).
     */
    private boolean injectedError(HttpExchange ex) throws IOException {
        if (behaviour.kind() != Kind.ERROR_RATE) {
            return false;
        }
        long n = errorRateRequests.incrementAndGet();
        long p = behaviour.numerator();
        long q = behaviour.denominator();
        if (n * p / q == (n - 1) * p / q) {
            return false;
        }
        sendJson(ex, 500, error(500, "Internal Server Error", ex));
        return true;
    }

    private void slow(HttpExchange ex) throws IOException, InterruptedException {
        String ms = queryParameter(ex, "ms");
        long sleep;
        try {
            sleep = Math.min(Long.parseLong(ms == null ? "" : ms), MAX_SLOW_MS);
        } catch (NumberFormatException e) {
            sleep = -1;
        }
        if (sleep < 0) {
            sendJson(ex, 400, "{\"status\":400,\"error\":\"Bad Request\",\"message\":"
                    + quote("ms must be a whole number of milliseconds (at most " + MAX_SLOW_MS + ")") + "}");
            return;
        }
        Thread.sleep(sleep);
        sendJson(ex, 200, info(sleep));
    }

    private void echo(HttpExchange ex) throws IOException {
        MessageDigest sha256;
        try {
            sha256 = MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
        long bytes = 0;
        InputStream in = ex.getRequestBody();
        byte[] buffer = new byte[64 * 1024];
        for (int n; (n = in.read(buffer)) != -1; ) {
            sha256.update(buffer, 0, n);
            bytes += n;
        }
        if (injectedError(ex)) {
            return;
        }
        sendJson(ex, 200, "{\"version\":" + quote(version) + ",\"profile\":" + quote(profile)
                + ",\"bytes\":" + bytes + ",\"sha256\":\"" + HexFormat.of().formatHex(sha256.digest()) + "\"}");
    }

    private String info(Long sleptMs) {
        return "{\"app\":\"" + APP_NAME + "\",\"version\":" + quote(version) + ",\"profile\":" + quote(profile)
                + ",\"port\":" + port + ",\"pid\":" + PID + (sleptMs == null ? "" : ",\"sleptMs\":" + sleptMs) + "}";
    }

    private String error(int status, String reason, HttpExchange ex) {
        return "{\"status\":" + status + ",\"error\":" + quote(reason) + ",\"path\":"
                + quote(ex.getRequestURI().getRawPath()) + ",\"version\":" + quote(version) + "}";
    }

    static String queryParameter(HttpExchange ex, String name) {
        String query = ex.getRequestURI().getQuery();
        if (query == null) {
            return null;
        }
        for (String pair : query.split("&")) {
            int eq = pair.indexOf('=');
            if (eq > 0 && pair.substring(0, eq).equals(name)) {
                return pair.substring(eq + 1);
            }
        }
        return null;
    }

    static void sendJson(HttpExchange ex, int status, String body) throws IOException {
        send(ex, status, "application/json", body);
    }

    /** Sends a complete response with a Content-Length, so that keep-alive works. */
    static void send(HttpExchange ex, int status, String contentType, String body) throws IOException {
        byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
        Headers headers = ex.getResponseHeaders();
        headers.set("Content-Type", contentType);
        if (ex.getRequestMethod().equals("HEAD")) {
            // HttpServer wants the length of a HEAD response as a header and -1 here.
            headers.set("Content-Length", Integer.toString(bytes.length));
            ex.sendResponseHeaders(status, -1);
            return;
        }
        ex.sendResponseHeaders(status, bytes.length); // never 0 here: 0 would mean chunked
        try (OutputStream out = ex.getResponseBody()) {
            out.write(bytes);
        }
    }

    static String quote(String s) {
        StringBuilder b = new StringBuilder(s.length() + 2).append('"');
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '"' -> b.append("\\\"");
                case '\\' -> b.append("\\\\");
                case '\n' -> b.append("\\n");
                case '\r' -> b.append("\\r");
                case '\t' -> b.append("\\t");
                default -> {
                    if (c < 0x20) {
                        b.append(String.format("\\u%04x", (int) c));
                    } else {
                        b.append(c);
                    }
                }
            }
        }
        return b.append('"').toString();
    }
}
