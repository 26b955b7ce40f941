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

/// Runs a program to completion with a time limit, capturing its output.
public func run(_ path: String, _ args: [String], stdin: Data? = nil, timeout: TimeInterval = 120,
                environment: [String: String]? = nil) throws -> RunResult {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: path)
    p.arguments = args
    if let environment { p.environment = environment }
    let out = Pipe(), err = Pipe()
    p.standardOutput = out
    p.standardError = err
    let inPipe = Pipe()
    p.standardInput = stdin == nil ? FileHandle.nullDevice : inPipe
    try p.run()
    if let stdin {
        try inPipe.fileHandleForWriting.write(contentsOf: stdin)
        try inPipe.fileHandleForWriting.close()
    }
    let outBox = DataBox(), errBox = DataBox()
    let g = DispatchGroup()
    g.enter(); DispatchQueue.global().async { outBox.data = out.fileHandleForReading.readDataToEndOfFile(); g.leave() }
    g.enter(); DispatchQueue.global().async { errBox.data = err.fileHandleForReading.readDataToEndOfFile(); g.leave() }
    let deadline = Date().addingTimeInterval(timeout)
    while p.isRunning && Date() < deadline { usleep(10_000) }
    if p.isRunning {
        p.terminate()
        p.waitUntilExit()
        g.wait()
        return RunResult(status: -1, stdout: String(decoding: outBox.data, as: UTF8.self),
                         stderr: "timed out after \(timeout) s\n" + String(decoding: errBox.data, as: UTF8.self))
    }
    p.waitUntilExit()
    g.wait()
    return RunResult(status: p.terminationStatus, stdout: String(decoding: outBox.data, as: UTF8.self),
                     stderr: String(decoding: errBox.data, as: UTF8.self))
}

final class DataBox: @unchecked Sendable { var data = Data() }

/// Runs the slotdiff binary.
public func slotdiff(_ args: [String], stdin: Data? = nil, timeout: TimeInterval = 120) throws -> RunResult {
    try run(TestPaths.slotdiffBinary, args, stdin: stdin, timeout: timeout)
}
