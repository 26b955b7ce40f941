import Foundation
import Testing

@testable import RESP

/// What the integration tests need from the machine. Without a server binary the suites are
/// skipped with a message, except on CI (CI=true), where they run and fail.
enum TestEnvironment {
    static let isCI = ProcessInfo.processInfo.environment["CI"] == "true"
    /// SLOTDIFF_REDIS_SERVER names another server binary (a Valkey or newer Redis build).
    static let redisServer =
        ProcessInfo.processInfo.environment["SLOTDIFF_REDIS_SERVER"].map { path in
            FileManager.default.isExecutableFile(atPath: path) ? path : nil
        } ?? executable("redis-server", preferring: "/usr/bin/redis-server")
    static let openssl = executable("openssl", preferring: "/usr/bin/openssl")

    static var serversAvailable: Bool { redisServer != nil || isCI }
    static var tlsAvailable: Bool { (redisServer != nil && openssl != nil) || isCI }
    static let skipMessage = "redis-server not found: run Scripts/setup (with CI=true these tests fail instead)"

    static func executable(_ name: String, preferring path: String) -> String? {
        var candidates = [path]
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":") {
            candidates.append("\(dir)/\(name)")
        }
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) }
    }
}

struct TestSetupError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

/// A free port whose cluster bus port (port + 10000) is free and valid too.
func freeClusterPort() throws -> Int {
    for _ in 0..<100 {
        let port = try freePort()
        if port + 10000 <= 65535, isFree(port + 10000) { return port }
    }
    throw TestSetupError("no free port pair for a cluster node")
}

/// A port nothing listens on right now (the kernel's choice for an ephemeral bind).
func freePort() throws -> Int { try bindLoopback(0) }

func isFree(_ port: Int) -> Bool { (try? bindLoopback(port)) != nil }

private func bindLoopback(_ port: Int) throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw TestSetupError("socket() failed") }
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = UInt16(port).bigEndian
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    let ok = withUnsafeMutablePointer(to: &addr) { p in
        p.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa in
            bind(fd, sa, len) == 0 && getsockname(fd, sa, &len) == 0
        }
    }
    guard ok else { throw TestSetupError("bind() failed") }
    return Int(UInt16(bigEndian: addr.sin_port))
}

func makeTempDirectory() throws -> URL {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("resp-tests-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    return dir
}

/// A redis-server of our own, on a free port, for the duration of `body`.
struct TestServer: Sendable {
    let port: Int
    let directory: URL
    let tls: Bool

    var endpoint: RedisEndpoint { RedisEndpoint(host: "127.0.0.1", port: port, tls: tls) }

    func log() -> String {
        (try? String(contentsOf: directory.appendingPathComponent("server.log"), encoding: .utf8)) ?? ""
    }
}

/// Files for a TLS server: a CA, a server certificate for localhost/127.0.0.1/::1 signed by
/// it, one for the name localhost only, and a client certificate. Made with the openssl command line.
struct TestCertificates: Sendable {
    let directory: URL
    var caFile: String { directory.appendingPathComponent("ca.crt").path }
    var serverCert: String { directory.appendingPathComponent("server.crt").path }
    var serverKey: String { directory.appendingPathComponent("server.key").path }
    var clientCert: String { directory.appendingPathComponent("client.crt").path }
    var clientKey: String { directory.appendingPathComponent("client.key").path }
    /// A server certificate naming only DNS:localhost, for host-name checks.
    var namedCert: String { directory.appendingPathComponent("named.crt").path }
    var namedKey: String { directory.appendingPathComponent("named.key").path }

    static func make(in directory: URL) throws -> TestCertificates {
        guard let openssl = TestEnvironment.openssl else { throw TestSetupError("openssl not found: run Scripts/setup") }
        func run(_ args: [String]) throws {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: openssl)
            p.arguments = args
            p.currentDirectoryURL = directory
            p.standardOutput = FileHandle.nullDevice
            let err = Pipe()
            p.standardError = err
            try p.run()
            let text = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            p.waitUntilExit()
            guard p.terminationStatus == 0 else { throw TestSetupError("openssl \(args.joined(separator: " ")): \(text)") }
        }
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        try run(
            ["req", "-x509", "-new"] + ec + [
                "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
                "-subj", "/CN=slotdiff-test-ca", "-addext", "keyUsage=critical,keyCertSign,cRLSign"
            ])
        for (name, usage, san) in [
            ("server", "serverAuth", "DNS:localhost,IP:127.0.0.1,IP:::1"),
            ("client", "clientAuth", "DNS:slotdiff-client"),
            ("named", "serverAuth", "DNS:localhost")
        ] {
            try "subjectAltName=\(san)\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=\(usage)\n"
                .write(to: directory.appendingPathComponent("\(name).ext"), atomically: true, encoding: .utf8)
            try run(["req", "-new"] + ec + ["-keyout", "\(name).key", "-out", "\(name).csr", "-subj", "/CN=\(name)"])
            try run([
                "x509", "-req", "-in", "\(name).csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                "-out", "\(name).crt", "-days", "2", "-extfile", "\(name).ext"
            ])
        }
        return TestCertificates(directory: directory)
    }
}

/// Starts `redis-server --port <free> --save "" --daemonize no` (plus `arguments`), waits
/// until it answers PING, runs `body`, and stops it whatever happens.
/// With `tls`, the server listens for TLS only (`--port 0 --tls-port <free>`).
func withRedisServer<T>(
    _ arguments: [String] = [], tls: TestCertificates? = nil, cluster: Bool = false,
    _ body: (TestServer) async throws -> T
) async throws -> T {
    guard let binary = TestEnvironment.redisServer else { throw TestSetupError(TestEnvironment.skipMessage) }
    let dir = try makeTempDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    var lastLog = ""
    for _ in 0..<3 {
        let port = try cluster ? freeClusterPort() : freePort()
        var args = [
            "--bind", "127.0.0.1", "-::1", "--save", "", "--appendonly", "no", "--daemonize", "no",
            "--dir", dir.path, "--logfile", dir.appendingPathComponent("server.log").path
        ]
        if let tls {
            args += [
                "--port", "0", "--tls-port", "\(port)", "--tls-cert-file", tls.serverCert,
                "--tls-key-file", tls.serverKey, "--tls-ca-cert-file", tls.caFile, "--tls-auth-clients", "no"
            ]
        } else {
            args += ["--port", "\(port)"]
        }
        if cluster {
            args += ["--cluster-enabled", "yes", "--cluster-config-file", "nodes-\(port).conf"]
        }
        args += arguments
        let errorLog = dir.appendingPathComponent("stderr-\(port).log")
        _ = FileManager.default.createFile(atPath: errorLog.path, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = args
        process.standardOutput = FileHandle.nullDevice
        process.standardError = try FileHandle(forWritingTo: errorLog)
        try process.run()
        defer { stop(process) }
        let server = TestServer(port: port, directory: dir, tls: tls != nil)
        if try await waitUntilReady(server, process: process, tls: tls) {
            return try await body(server)
        }
        lastLog = server.log() + ((try? String(contentsOf: errorLog, encoding: .utf8)) ?? "")
    }
    throw TestSetupError("redis-server did not start:\n\(lastLog.suffix(2000))")
}

/// SIGKILL, not SIGTERM: a child started from the test runner's threads inherits their
/// blocked-signal mask, SIGTERM included, and would never exit. The servers keep no data.
private func stop(_ process: Process) {
    if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    process.waitUntilExit()
}

private func waitUntilReady(_ server: TestServer, process: Process, tls: TestCertificates?) async throws -> Bool {
    var options = RedisConnectionOptions(connectTimeout: .seconds(1), requestTimeout: .seconds(2))
    if tls != nil { options.tls = try RedisTLS(TLSOptions(insecure: true)) }
    for _ in 0..<200 {
        guard process.isRunning else { return false }
        if let c = try? await RedisConnection.connect(to: server.endpoint, options: options) {
            let pong = try? await c.send("PING")
            await c.close()
            if pong?.string == "PONG" { return true }
        }
        try await Task.sleep(for: .milliseconds(25))
    }
    return false
}
