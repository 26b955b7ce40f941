import Foundation

/// Paths and processes the test suites share.
public enum TestPaths {
    /// The package root (this file is Tests/TestSupport/TestSupport.swift).
    public static let root: URL = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    public static func fixture(_ name: String) -> String { root.appendingPathComponent("Fixtures").appendingPathComponent(name).path }

    /// The built `slotdiff` executable next to the test bundle.
    public static var slotdiffBinary: String {
        var dir = Bundle.main.bundleURL
        for _ in 0..<4 {
            let c = dir.appendingPathComponent("slotdiff")
            if FileManager.default.isExecutableFile(atPath: c.path) { return c.path }
            dir = dir.deletingLastPathComponent()
        }
        for cfg in ["debug", "release"] {
            let c = root.appendingPathComponent(".build/\(cfg)/slotdiff").path
            if FileManager.default.isExecutableFile(atPath: c) { return c }
        }
        return root.appendingPathComponent(".build/debug/slotdiff").path
    }

    public static func temporaryDirectory() -> URL {
        let d = FileManager.default.temporaryDirectory.appendingPathComponent("slotdiff-test-\(UUID().uuidString)")
        try? FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
        return d
    }

    /// True when tests that need servers must run (CI) rather than skip.
    public static var mustRunServerTests: Bool { ProcessInfo.processInfo.environment["CI"] == "true" }
}

public struct RunResult: Sendable {
    public var status: Int32
    public var stdout: String
    public var stderr: String
}

/// Runs a program to completion with a time limit, capturing its output. It uses
/// posix_spawn and waitpid directly, with output in temporary files: scripts here daemonize
/// servers, and neither a pipe a daemon keeps open nor a missed child exit may hang a test.
public func run(
    _ path: String, _ args: [String], stdin: Data? = nil, timeout: TimeInterval = 120,
    environment: [String: String]? = nil
) throws -> RunResult {
    try Background(path, args, stdin: stdin, environment: environment).wait(timeout: timeout)
}

/// A program started in the background (output to files), for tests that signal or kill it.
public final class Background: @unchecked Sendable {
    public let pid: pid_t
    let outPath: String
    let errPath: String

    let inPath: String?

    public init(_ path: String, _ args: [String], stdin: Data? = nil, environment: [String: String]? = nil) throws {
        let dir = FileManager.default.temporaryDirectory
        let id = UUID().uuidString
        outPath = dir.appendingPathComponent("bg-\(id).out").path
        errPath = dir.appendingPathComponent("bg-\(id).err").path
        if let stdin {
            let p = dir.appendingPathComponent("bg-\(id).in").path
            try stdin.write(to: URL(fileURLWithPath: p))
            inPath = p
        } else {
            inPath = nil
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, inPath ?? "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_addopen(&actions, 2, errPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        var none = sigset_t()
        sigemptyset(&none)
        posix_spawnattr_setsigmask(&attr, &none)
        var def = sigset_t()
        sigemptyset(&def)
        sigaddset(&def, SIGINT)
        posix_spawnattr_setsigdefault(&attr, &def)
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        // Children start with no blocked signals (a test runner may block some), so servers they
        // start can be stopped with SIGTERM, and SIGINT has its default action.
        let env = (environment ?? ProcessInfo.processInfo.environment).map { "\($0.key)=\($0.value)" }
        var p: pid_t = 0
        let rc = withCStrings([path] + args) { a in withCStrings(env) { e in posix_spawn(&p, path, &actions, &attr, a, e) } }
        if rc != 0 { throw TestServers.Failure(description: "cannot start \(path): \(String(cString: strerror(rc)))") }
        pid = p
    }

    public func signal(_ sig: Int32) { kill(pid, sig) }

    /// Waits for the exit: the exit status (128 + signal when killed by one; -1 when the time
    /// limit passed and it was killed) and the output.
    public func wait(timeout: TimeInterval = 600) -> RunResult {
        var status: Int32 = 0
        let deadline = Date().addingTimeInterval(timeout)
        var timedOut = false
        while true {
            let r = waitpid(pid, &status, WNOHANG)
            if r == pid || (r < 0 && errno != EINTR) { break }
            if Date() > deadline {
                timedOut = true
                kill(pid, SIGKILL)
                _ = waitpid(pid, &status, 0)
                break
            }
            usleep(5_000)
        }
        let code: Int32 = timedOut ? -1 : (status & 0x7F) == 0 ? (status >> 8) & 0xFF : 128 + (status & 0x7F)
        let o = (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? ""
        let e = (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? ""
        for p in [outPath, errPath] + (inPath.map { [$0] } ?? []) { unlink(p) }
        return RunResult(status: code, stdout: o, stderr: (timedOut ? "timed out after \(timeout) s\n" : "") + e)
    }
}

func withCStrings<R>(_ strings: [String], _ body: ([UnsafeMutablePointer<CChar>?]) -> R) -> R {
    var ptrs: [UnsafeMutablePointer<CChar>?] = strings.map { strdup($0) }
    ptrs.append(nil)
    defer { for p in ptrs { free(p) } }
    return body(ptrs)
}

/// Runs the slotdiff binary.
public func slotdiff(_ args: [String], stdin: Data? = nil, timeout: TimeInterval = 120) throws -> RunResult {
    try run(TestPaths.slotdiffBinary, args, stdin: stdin, timeout: timeout)
}

/// Runs a test body that blocks (waits for processes, sleeps) on a thread outside Swift's
/// cooperative pool: on a 2-core machine two blocking tests would otherwise hold the whole pool
/// and stall every async test (a 200 ms timeout measured as 10 s). At most two such bodies
/// run at once, as the pool allowed before, so the servers and processes they start do not
/// crowd the machine. The body stays in the test's task (a task executor preference), so its
/// expectations are recorded against the test.
@available(macOS 15.0, *)
public func offPool<T: Sendable>(_ body: @Sendable () throws -> T) async throws -> T {
    try await withTaskExecutorPreference(BlockingExecutor.shared) { try body() }
}

/// Runs jobs on dispatch threads, two at a time.
@available(macOS 15.0, *)
final class BlockingExecutor: TaskExecutor {
    static let shared = BlockingExecutor()
    let queue = DispatchQueue(label: "slotdiff.tests.blocking", attributes: .concurrent)
    let slots = DispatchSemaphore(value: 2)

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let executor = asUnownedTaskExecutor()
        queue.async { [slots] in
            slots.wait()
            job.runSynchronously(on: executor)
            slots.signal()
        }
    }
}

/// A `slotdiff watch` of two bundled dumps (one pass a minute, into a new directory) sent
/// `signal` once its first pass is recorded: how it ended, how long after the signal, and its
/// directory.
public func watchStopped(by signal: Int32) throws -> (result: RunResult, seconds: Double, dir: String) {
    let dir = TestPaths.temporaryDirectory().appendingPathComponent("w").path
    let bg = try Background(
        TestPaths.slotdiffBinary,
        [
            "watch", TestPaths.fixture("drift-source.rdb"), TestPaths.fixture("drift-target.rdb"),
            "--every", "60s", "--dir", dir
        ])
    for _ in 0..<500 where !FileManager.default.fileExists(atPath: dir + "/trend.json") { usleep(20_000) }
    let sent = Date()
    bg.signal(signal)
    let r = bg.wait()
    return (r, Date().timeIntervalSince(sent), dir)
}

/// The commands of a RESP script (as `slotdiff repair` writes them), each as its arguments.
public func scriptCommands(_ path: String) throws -> [[[UInt8]]] {
    let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
    var i = 0
    func line() -> Int {
        var n = 0
        i += 1  // the type byte
        while bytes[i] != 13 { n = n * 10 + Int(bytes[i] - 48); i += 1 }
        i += 2
        return n
    }
    var out: [[[UInt8]]] = []
    while i < bytes.count {
        let n = line()
        var c: [[UInt8]] = []
        for _ in 0..<n {
            let len = line()
            c.append(Array(bytes[i..<i + len]))
            i += len + 2
        }
        out.append(c)
    }
    return out
}
