import Foundation
import RDB
import SlotdiffCore

/// One side given as dump files: a path, several comma-separated paths, or a directory of
/// dumps (one per shard of a cluster backup).
public struct DumpFiles: Sendable {
    public let spec: String
    public let paths: [String]

    public static let extensions = [".rdb", ".rdb.zst", ".rdb.zstd"]

    public init(spec: String) throws {
        self.spec = spec
        var out: [String] = []
        for part in spec.split(separator: ",").map(String.init) where !part.isEmpty {
            var isDir: ObjCBool = false
            if part != "-" && FileManager.default.fileExists(atPath: part, isDirectory: &isDir) && isDir.boolValue {
                let names = try FileManager.default.contentsOfDirectory(atPath: part)
                    .filter { n in Self.extensions.contains { n.hasSuffix($0) } }.sorted()
                if names.isEmpty { throw RDBError(input: part, offset: 0, reason: "directory holds no dump files (*.rdb, *.rdb.zst)") }
                out += names.map { (part as NSString).appendingPathComponent($0) }
            } else {
                out.append(part)
            }
        }
        if out.isEmpty { throw RDBError(input: spec, offset: 0, reason: "no dump file given") }
        paths = out
    }

    /// True when a command-line side names dump files rather than a server.
    public static func looksLikeFiles(_ spec: String) -> Bool {
        !(spec.hasPrefix("redis://") || spec.hasPrefix("rediss://") || spec.hasPrefix("valkey://") || spec.hasPrefix("valkeys://"))
    }
}

/// The records of one dump file, held in a key table.
public struct LoadedDump {
    public let path: String
    public let table: KeyTable
    public let info: RDBFileInfo
    /// Keys left out by the filter.
    public let filteredOut: Int
    /// Keys whose collection was empty (servers do not load them; neither do we).
    public let emptySkipped: Int
    /// Keys found twice in this one file: `source` holds the first copy, `target` the second.
    public let duplicates: [Difference]
    public let seconds: Double
}

public enum DumpLoader {
    /// Parses one dump file into a key table, applying the filter.
    public static func load(path: String, filter: KeyFilter, mode: CompareMode = .digest) throws -> LoadedDump {
        let start = Date()
        let parser = try RDBFileParser(path: path)
        let d = CanonicalDigester()
        let table = KeyTable(origin: path, expectedCount: 1024)
        var filtered = 0
        var empty = 0
        var duplicates: [Difference] = []
        // RESIZEDB hints size the table up front; a key takes at least 4 bytes of a dump, so a
        // hint larger than that allows is corruption and is not believed.
        let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? nil
        let zst = path.hasSuffix(".zst") || path.hasSuffix(".zstd")
        let hintCap = size.map { zst ? $0 : $0 / 4 } ?? (1 << 20)
        try parser.parse(digester: d, onResize: { n in
            table.reserve(min(n, hintCap))
        }, onKey: { ev in
            let slot = HashSlot.slot(of: ev.key)
            guard filter.inPass(slot) else { return }
            guard filter.accepts(db: ev.db, key: ev.key, slot: slot, type: ev.type) else { filtered += 1; return }
            guard var digest = ev.digest else { empty += 1; return }
            switch mode {
            case .digest: break
            case .length: digest = Hash128.length(of: ev.type, count: d.count)
            case .keys: digest = .zero
            }
            let r = table.insert(db: ev.db, key: ev.key, slot: slot, type: ev.type, expireMs: ev.expireMs, digest: digest)
            if !r.inserted {
                // A server refuses to load such a file; report the key instead of guessing which copy counts.
                let first = table.entry(r.index).state
                duplicates.append(Difference(kind: .duplicate, db: ev.db, slot: slot, key: Array(ev.key),
                                             source: first, target: SideState(type: ev.type, expireMs: ev.expireMs, digest: digest),
                                             origins: [path, path]))
            }
        })
        return LoadedDump(path: path, table: table, info: parser.info, filteredOut: filtered, emptySkipped: empty, duplicates: duplicates,
                          seconds: Date().timeIntervalSince(start))
    }

    /// Loads every file of both sides, `workers` files at a time, keeping the given order.
    public static func loadAll(_ paths: [String], filter: KeyFilter, workers: Int, mode: CompareMode = .digest) throws -> [LoadedDump] {
        let work = WorkList(count: paths.count)
        let group = DispatchGroup()
        for _ in 0..<max(1, min(workers, paths.count)) {
            group.enter()
            Thread.detachNewThread {
                while let i = work.take() {
                    work.put(i, Result { try load(path: paths[i], filter: filter, mode: mode) })
                }
                group.leave()
            }
        }
        group.wait()
        return try work.results.map { try $0!.get() }
    }
}

/// Hands out indexes to worker threads and collects their results.
final class WorkList: @unchecked Sendable {
    private let lock = NSLock()
    private var next = 0
    private let count: Int
    private(set) var results: [Result<LoadedDump, Error>?]

    init(count: Int) {
        self.count = count
        results = Array(repeating: nil, count: count)
    }

    func take() -> Int? {
        lock.lock()
        defer { lock.unlock() }
        if next >= count { return nil }
        next += 1
        return next - 1
    }

    func put(_ i: Int, _ r: Result<LoadedDump, Error>) {
        lock.lock()
        results[i] = r
        lock.unlock()
    }
}
