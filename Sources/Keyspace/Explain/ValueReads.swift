import Foundation
import RDB
import SlotdiffCore

extension KeyspaceSource {
    /// A side that cannot read a value again (the default): every key is "cannot explain".
    public func values(_ keys: [(db: Int, key: [UInt8])], bound: ExplainBound, sink: (any ValueSink)?) async throws -> [ValueRead] {
        keys.map { _ in .unavailable("this side cannot read values again") }
    }

    /// Values kept within `bound` (explanations).
    public func values(_ keys: [(db: Int, key: [UInt8])], bound: ExplainBound) async throws -> [ValueRead] {
        try await values(keys, bound: bound, sink: nil)
    }
}

extension DumpFileSource {
    /// One more pass over the files: every key is parsed (a dump cannot be skipped through),
    /// and only the wanted ones are kept, element by element. A key two files hold is taken
    /// from the first, as the check took it.
    public func values(_ keys: [(db: Int, key: [UInt8])], bound: ExplainBound, sink: (any ValueSink)?) async throws -> [ValueRead] {
        if keys.isEmpty { return [] }
        if files.paths.contains("-") { return keys.map { _ in .unavailable("standard input cannot be read again") } }
        // A pipe or a device gives its bytes once: opening it again would wait for a writer.
        for path in files.paths {
            var st = stat()
            if stat(path, &st) != 0 || st.st_mode & S_IFMT != S_IFREG {
                return keys.map { _ in .unavailable("\(path) is not a regular file and cannot be read again") }
            }
        }
        let paths = files.paths
        // Parsing is CPU work: on a thread of its own, not one of the cooperative pool that a
        // live side's reads need (as the check's own parses).
        let keys = keys.map { Self.identity($0.db, $0.key) }
        // The sink is used by that one thread only, and only while this call waits for it.
        nonisolated(unsafe) let sink = sink
        return try await DumpLoader.inParallel(1, workers: 1) { _ in try Self.read(keys, from: paths, bound: bound, sink: sink) }[0]
    }

    /// The wanted keys (`identity`) read from the files in order, as `values` answers them.
    static func read(_ keys: [[UInt8]], from paths: [String], bound: ExplainBound, sink: (any ValueSink)? = nil) throws -> [ValueRead] {
        var wanted: [[UInt8]: Int] = [:]
        for (i, k) in keys.enumerated() { wanted[k] = i }
        var out = [ValueRead](repeating: .absent, count: keys.count)
        var found = Set<Int>()
        let capture = ValueCapture(bound: bound, sink: sink)
        for path in paths {
            let d = CanonicalDigester()
            let parser = try RDBFileParser(path: path)
            var current: Int?
            do {
                try parser.parse(
                    digester: d,
                    beforeValue: { db, key in
                        current = wanted[Self.identity(db, key)].flatMap { found.contains($0) ? nil : $0 }
                        d.capture = current == nil ? nil : capture
                        if let current { capture.index = current }
                    }
                ) { e in
                    guard let i = current else { return }
                    found.insert(i)
                    // An empty collection is skipped, as a server loading the dump would.
                    guard let digest = e.digest else { _ = capture.take(); return }
                    out[i] = .present(SideState(type: e.type, expireMs: e.expireMs, digest: digest), capture.take())
                }
            } catch let e as RDBError {
                throw SlotdiffError(.corruptInput, e.description, file: e.input, offset: e.offset)
            }
            if found.count == keys.count { break }
        }
        return out
    }

    static func identity(_ db: Int, _ key: [UInt8]) -> [UInt8] {
        withUnsafeBytes(of: Int64(db).littleEndian) { Array($0) } + key
    }
}
