import Foundation
import HashSlots
import SlotdiffCore

/// One side of a check, whatever it is: dump files (`DumpFileSource`), a live standalone
/// server or a live cluster (`LiveSide`) — and what comes next (a digest file of a keyspace,
/// a side read through fallbacks). The comparer and the re-check rounds see only this.
///
/// A check in N slot-range passes asks `readOnce` first: a side that cannot be read one slot
/// range at a time reads everything once and returns its records kept per pass; that value
/// (not hidden state) is handed back to `records` for each pass and let go at the end.
public protocol KeyspaceSource: AnyObject, Sendable {
    /// A side that changes while it is read (a server): differences are read again in later
    /// rounds before they are reported.
    var isLive: Bool { get }
    /// A cluster has only database 0.
    var isCluster: Bool { get }
    /// How many keys the side holds now, to size the passes; nil where only reading tells.
    func keyCount() async throws -> Int?
    /// The databases whose keys this side reads; nil where only reading tells.
    func databases() async throws -> [Int]?
    /// For a check in several passes: what cannot be read one slot range at a time is read once
    /// and kept per pass. Nil: each pass reads the side itself.
    func readOnce(passes: [SlotRange], _ read: ReadContext) async throws -> (any KeptPasses)?
    /// The records of the pass `read.filter.pass` (of every key without one).
    func records(_ read: ReadContext, kept: (any KeptPasses)?) async throws -> SideRecords
    /// The state of given keys now (nil: absent); `first` is what `records` found. A dump file
    /// does not change: its first state stands.
    func reread(_ keys: [(db: Int, key: [UInt8])], first: [SideState?]) async throws -> [SideState?]
    /// Given keys read again with their values kept element by element (within `bound`), to
    /// explain differences (`Explain`); with a `sink`, each value's elements are handed to it
    /// as they are read instead (`ValueSink`; repair scripts), one key after the other. A side
    /// that cannot read values again answers `.unavailable` for each (the default, in
    /// `ValueReads.swift`).
    func values(_ keys: [(db: Int, key: [UInt8])], bound: ExplainBound, sink: (any ValueSink)?) async throws -> [ValueRead]
    /// Lets go of connections.
    func close() async
}

/// What a side kept per pass when it was read once (temporary files, deleted when let go).
public protocol KeptPasses: Sendable {}

/// How one read of a side is done.
public struct ReadContext: Sendable {
    public var filter: KeyFilter
    public var mode: CompareMode
    public var workers: Int
    public var progress: CheckProgress?
    /// Asked between batches: a read asked to stop ends early and keeps nothing.
    public var stop: @Sendable () -> Bool

    public init(filter: KeyFilter, mode: CompareMode, workers: Int, progress: CheckProgress?, stop: @escaping @Sendable () -> Bool) {
        self.filter = filter
        self.mode = mode
        self.workers = workers
        self.progress = progress
        self.stop = stop
    }
}

/// The records of one side for one pass, and what the summary says of the side.
public struct SideRecords: Sendable {
    /// One table per input (dump file, cluster node); a key in two tables of a live side was
    /// moving between nodes and is compared once.
    public var tables: [KeyTable]
    public var inputs: [[String: String]]
    /// When the records were taken (a dump's ctime); nil: now.
    public var snapshotMs: Int64?
    public var filteredOut = 0
    public var emptySkipped = 0
    /// Keys one input holds twice: `source` the first copy, `target` the second.
    public var duplicates: [Difference] = []

    public init(tables: [KeyTable], inputs: [[String: String]], snapshotMs: Int64? = nil) {
        self.tables = tables
        self.inputs = inputs
        self.snapshotMs = snapshotMs
    }
}

/// Dump files as a side: parsed (several files at once) for each pass, or once for all passes
/// with their records kept per pass.
public final class DumpFileSource: KeyspaceSource {
    public let files: DumpFiles
    public var isLive: Bool { false }
    public var isCluster: Bool { false }

    public init(_ files: DumpFiles) { self.files = files }

    public func keyCount() async throws -> Int? { nil }
    public func databases() async throws -> [Int]? { nil }

    struct Spilled: KeptPasses {
        let dumps: [SpilledDump]
    }

    public func readOnce(passes: [SlotRange], _ read: ReadContext) async throws -> (any KeptPasses)? {
        let dumps = try await DumpLoader.spillAll(files.paths, filter: read.filter, workers: read.workers, mode: read.mode, passes: passes)
        read.progress?.addKeys(dumps.map(\.info.keys).reduce(0, +))
        return Spilled(dumps: dumps)
    }

    public func records(_ read: ReadContext, kept: (any KeptPasses)?) async throws -> SideRecords {
        let dumps: [LoadedDump]
        if let kept = kept as? Spilled, let pass = read.filter.pass {
            dumps = try kept.dumps.map { try $0.load(pass: pass) }
        } else {
            dumps = try await DumpLoader.loadAll(files.paths, filter: read.filter, workers: read.workers, mode: read.mode)
            read.progress?.addKeys(dumps.map(\.info.keys).reduce(0, +))
        }
        var r = SideRecords(tables: dumps.map(\.table), inputs: dumps.map(Self.describe), snapshotMs: dumps.compactMap(\.info.ctimeMs).max())
        r.filteredOut = dumps.map(\.filteredOut).reduce(0, +)
        r.emptySkipped = dumps.map(\.emptySkipped).reduce(0, +)
        r.duplicates = dumps.flatMap(\.duplicates)
        return r
    }

    public func reread(_ keys: [(db: Int, key: [UInt8])], first: [SideState?]) async throws -> [SideState?] { first }

    public func close() async {}

    public static func describe(_ d: LoadedDump) -> [String: String] {
        var o = [
            "path": d.path, "rdb_version": d.info.valkey ? "VALKEY\(d.info.version)" : "\(d.info.version)",
            "keys": "\(d.info.keys)", "bytes": "\(d.info.bytes)", "checksum": d.info.checksum.rawValue,
            "seconds": String(format: "%.3f", d.seconds)
        ]
        if let p = d.info.producer { o["producer"] = p }
        return o
    }
}
