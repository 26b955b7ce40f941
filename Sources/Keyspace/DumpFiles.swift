import Foundation
import HashSlots
import NIOConcurrencyHelpers
import RDB
import SlotdiffCore

/// One side given as dump files: a path, several comma-separated paths, or a directory of
/// dumps (one per shard of a cluster backup).
///
/// A directory side reads its `*.rdb`, `*.rdb.zst` and `*.rdb.zstd` files. Any other entry
/// whose name says it is a dump (`*.rdb*`: `dump.rdb.gz`, `dump.rdb.bak`), and any
/// subdirectory that holds such entries, is an error: left out, it would make a shard look
/// missing. Unrelated entries (`nodes.conf`, `appendonlydir/`) are listed in `skipped`.
public struct DumpFiles: Sendable {
    public let spec: String
    public let paths: [String]
    /// Entries of directory sides that are not read, and why.
    public let skipped: [Skipped]

    public struct Skipped: Sendable, Equatable {
        public var path: String
        public var reason: String
    }

    public static let extensions = [".rdb", ".rdb.zst", ".rdb.zstd"]

    public init(spec: String) throws {
        self.spec = spec
        var out: [String] = []
        var skipped: [Skipped] = []
        for part in spec.split(separator: ",").map(String.init) where !part.isEmpty {
            var isDir: ObjCBool = false
            if part != "-" && FileManager.default.fileExists(atPath: part, isDirectory: &isDir) && isDir.boolValue {
                let entries: [String]
                do { entries = try FileManager.default.contentsOfDirectory(atPath: part).sorted() } catch {
                    throw SlotdiffError(.usage, "\(part): cannot list the directory: \(String(cString: strerror(errno)))")
                }
                var names: [String] = []
                var refused: [String] = []
                for n in entries {
                    let full = (part as NSString).appendingPathComponent(n)
                    var sub: ObjCBool = false
                    _ = FileManager.default.fileExists(atPath: full, isDirectory: &sub)
                    if sub.boolValue {
                        let inner = ((try? FileManager.default.contentsOfDirectory(atPath: full)) ?? []).filter(Self.namedLikeDump).sorted()
                        if Self.namedLikeDump(n) {
                            refused.append("\(n)/ is named like a dump but is a directory")
                        } else if inner.isEmpty {
                            skipped.append(Skipped(path: full, reason: "a directory (directories are not descended into)"))
                        } else {
                            refused.append(
                                "\(n)/ is a directory holding dump files (\(inner.prefix(3).joined(separator: ", "))"
                                    + "\(inner.count > 3 ? ", …" : "")), which are not read from here; name each dump, comma-separated")
                        }
                    } else if Self.extensions.contains(where: { n.hasSuffix($0) }) {
                        names.append(n)
                    } else if Self.namedLikeDump(n) {
                        refused.append("\(n): " + Self.whyNotRead(n))
                    } else {
                        skipped.append(Skipped(path: full, reason: "not a dump file name (*.rdb, *.rdb.zst, *.rdb.zstd)"))
                    }
                }
                if !refused.isEmpty {
                    throw SlotdiffError(
                        .usage,
                        "\(part): \(refused.count == 1 ? "an entry that looks like a dump cannot be read" : "\(refused.count) entries that look like dumps cannot be read")"
                            + " (leaving \(refused.count == 1 ? "it" : "them") out would make shards look missing): "
                            + refused.joined(separator: "; "))
                }
                if names.isEmpty { throw SlotdiffError(.usage, "\(part): directory holds no dump files (*.rdb, *.rdb.zst)") }
                out += names.map { (part as NSString).appendingPathComponent($0) }
            } else {
                out.append(part)
            }
        }
        if out.isEmpty { throw RDBError(input: spec, offset: 0, reason: "no dump file given") }
        paths = out
        self.skipped = skipped
    }

    /// A name that says its file is a dump: `.rdb` somewhere in it (any case).
    static func namedLikeDump(_ name: String) -> Bool { name.lowercased().contains(".rdb") }

    static func whyNotRead(_ name: String) -> String {
        let lower = name.lowercased()
        let compressors = [(".gz", "gzip"), (".bz2", "bzip2"), (".xz", "xz"), (".lz4", "lz4"), (".lzma", "lzma"), (".zip", "zip"), (".7z", "7-Zip")]
        if let (_, tool) = compressors.first(where: { lower.hasSuffix($0.0) }) {
            return "\(tool) is not read; decompress it (or recompress it with zstd, .rdb.zst)"
        }
        if extensions.contains(where: { lower.hasSuffix($0) }) {
            return "named in another case than *.rdb, *.rdb.zst, *.rdb.zstd; rename it"
        }
        return "named like a dump but not *.rdb, *.rdb.zst or *.rdb.zstd; rename it, or move it out of the directory"
    }

    /// True when a command-line side names dump files rather than a server.
    public static func looksLikeFiles(_ spec: String) -> Bool {
        !(spec.hasPrefix("redis://") || spec.hasPrefix("rediss://") || spec.hasPrefix("valkey://") || spec.hasPrefix("valkeys://"))
    }
}

/// The records of one dump file, held in a key table.
public struct LoadedDump: Sendable {
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
        try read(path: path, filter: filter, mode: mode, spill: nil)
    }

    /// `load`; with `spill`, the records go to its per-pass files instead (duplicates are found
    /// when a pass is read back).
    static func read(path: String, filter: KeyFilter, mode: CompareMode, spill: SpillStore?) throws -> LoadedDump {
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
        // The key's table hash, taken before its value is decoded: the decode hides the cache
        // miss of the index slot it prefetches (`KeyTable.prepare`).
        var hashed: UInt64 = 0
        try parser.parse(
            digester: d,
            onResize: { n in
                table.reserve(min(n, hintCap))
            },
            beforeValue: spill != nil ? nil : { db, key in hashed = key.withUnsafeBytes { table.prepare(db: db, key: $0) } },
            onKey: { ev in
                let slot = HashSlot.slot(of: ev.key)
                guard filter.inPass(slot) else { return }
                guard filter.accepts(db: ev.db, key: ev.key, slot: slot, type: ev.type) else {
                    filtered += 1
                    spill?.countFiltered(slot: slot)
                    return
                }
                guard var digest = ev.digest else {
                    empty += 1
                    spill?.countEmpty(slot: slot)
                    return
                }
                switch mode {
                case .digest: break
                case .length: digest = Hash128.length(of: ev.type, count: d.count)
                case .keys: digest = .zero
                }
                if let spill {
                    try spill.add(db: ev.db, key: ev.key, slot: slot, state: SideState(type: ev.type, expireMs: ev.expireMs, digest: digest))
                    return
                }
                let r = table.insert(db: ev.db, key: ev.key, hash: hashed, slot: slot, type: ev.type, expireMs: ev.expireMs, digest: digest)
                if !r.inserted {
                    // A server refuses to load such a file; report the key instead of guessing which copy counts.
                    let first = table.entry(r.index).state
                    duplicates.append(
                        Difference(
                            kind: .duplicate, db: ev.db, slot: slot, key: Array(ev.key),
                            source: first, target: SideState(type: ev.type, expireMs: ev.expireMs, digest: digest),
                            origins: [path, path]))
                }
            })
        return LoadedDump(
            path: path, table: table, info: parser.info, filteredOut: filtered, emptySkipped: empty, duplicates: duplicates,
            seconds: Date().timeIntervalSince(start))
    }

    /// Loads every file of both sides, `workers` files at a time, keeping the given order.
    public static func loadAll(_ paths: [String], filter: KeyFilter, workers: Int, mode: CompareMode = .digest) async throws -> [LoadedDump] {
        try await inParallel(paths.count, workers: workers) { try load(path: paths[$0], filter: filter, mode: mode) }
    }

    /// For a check in several passes: parses every file once, `workers` at a time, keeping
    /// each file's records per pass (`passes`) in temporary files.
    static func spillAll(_ paths: [String], filter: KeyFilter, workers: Int, mode: CompareMode, passes: [SlotRange]) async throws -> [SpilledDump] {
        var whole = filter
        whole.pass = nil
        let all = whole
        return try await inParallel(paths.count, workers: workers) { i in
            // A store let go (on an error too) deletes its files.
            let store = try SpillStore(passes: passes)
            let d = try read(path: paths[i], filter: all, mode: mode, spill: store)
            try store.finish()
            return SpilledDump(path: paths[i], store: store, info: d.info, seconds: d.seconds)
        }
    }

    /// Runs `body` for 0..<count on up to `workers` threads of their own (parsing is CPU work
    /// that would hold the threads of Swift's cooperative pool, which the live sides' network
    /// reads need); the results in order. The caller waits without blocking a thread.
    static func inParallel<T: Sendable>(_ count: Int, workers: Int, _ body: @escaping @Sendable (Int) throws -> T) async throws -> [T] {
        let work = WorkList<T>(count: count)
        let group = DispatchGroup()
        for _ in 0..<max(1, min(workers, count)) {
            group.enter()
            Thread.detachNewThread {
                while let i = work.take() {
                    work.put(i, Result { try body(i) })
                }
                group.leave()
            }
        }
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            group.notify(queue: .global()) { done.resume() }
        }
        return try work.results.map { try $0!.get() }
    }
}

/// A dump file parsed once for a check in several passes, its records kept per pass.
struct SpilledDump: Sendable {
    let path: String
    let store: SpillStore
    let info: RDBFileInfo
    let seconds: Double

    /// The file's share of one pass, as if it had been loaded for that pass alone.
    func load(pass: SlotRange) throws -> LoadedDump {
        guard let i = store.passes.firstIndex(of: pass) else { throw SlotdiffError(.io, "pass \(pass) of \(path) was not kept", file: path) }
        let p = try store.load(pass: i, origin: path)
        return LoadedDump(
            path: path, table: p.table, info: info, filteredOut: p.filteredOut, emptySkipped: p.emptySkipped,
            duplicates: p.duplicates, seconds: seconds)
    }
}

/// Hands out indexes to worker threads and collects their results.
final class WorkList<T: Sendable>: Sendable {
    private struct State {
        var next = 0
        var results: [Result<T, Error>?]
    }

    private let count: Int
    private let state: NIOLockedValueBox<State>

    init(count: Int) {
        self.count = count
        state = NIOLockedValueBox(State(results: Array(repeating: nil, count: count)))
    }

    var results: [Result<T, Error>?] { state.withLockedValue { $0.results } }

    func take() -> Int? {
        state.withLockedValue { s in
            if s.next >= count { return nil }
            s.next += 1
            return s.next - 1
        }
    }

    func put(_ i: Int, _ r: Result<T, Error>) {
        state.withLockedValue { $0.results[i] = r }
    }
}
