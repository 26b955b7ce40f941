import HashSlots
import SlotdiffCore

/// A side compared under other database numbers (`--db-map 3=0`: the source's database 3 is
/// compared with the target's database 0 — a standalone server moving to a cluster, which has
/// only database 0). Only the mapped databases are read; records leave with the compared
/// numbers, and keys read again go back to the side under its own.
public final class RenumberedSource: KeyspaceSource {
    let inner: any KeyspaceSource
    /// The side's own database → the number it is compared under.
    let map: [Int: Int]
    let back: [Int: Int]

    /// `map` must be one-to-one (`DatabaseMap` checks the option).
    public init(_ inner: any KeyspaceSource, map: [Int: Int]) {
        self.inner = inner
        self.map = map
        back = Dictionary(uniqueKeysWithValues: map.map { ($0.value, $0.key) })
    }

    public var isLive: Bool { inner.isLive }
    /// A cluster's database 0 compared under another number: the other side's database is not
    /// looked for on the cluster, so the one-database rule no longer applies to it.
    public var isCluster: Bool { inner.isCluster && map[0] == 0 }

    public func keyCount() async throws -> Int? { try await inner.keyCount() }

    public func databases() async throws -> [Int]? {
        try await inner.databases().map { $0.compactMap { map[$0] }.sorted() }
    }

    /// The read in the side's own numbers: only the mapped databases (of those asked for).
    func own(_ read: ReadContext) -> ReadContext {
        var r = read
        r.filter.dbs = Set((read.filter.dbs ?? Set(back.keys)).compactMap { back[$0] })
        return r
    }

    public func readOnce(passes: [SlotRange], _ read: ReadContext) async throws -> (any KeptPasses)? {
        try await inner.readOnce(passes: passes, own(read))
    }

    public func records(_ read: ReadContext, kept: (any KeptPasses)?) async throws -> SideRecords {
        var r = try await inner.records(own(read), kept: kept)
        for t in r.tables { try t.renumberDatabases { self.map[$0] } }
        r.duplicates = r.duplicates.map { d in
            var d = d
            d.db = map[d.db] ?? d.db
            return d
        }
        return r
    }

    public func reread(_ keys: [(db: Int, key: [UInt8])], first: [SideState?]) async throws -> [SideState?] {
        try await inner.reread(keys.map { (db: back[$0.db] ?? $0.db, key: $0.key) }, first: first)
    }

    public func values(_ keys: [(db: Int, key: [UInt8])], bound: ExplainBound, sink: (any ValueSink)?) async throws -> [ValueRead] {
        try await inner.values(keys.map { (db: back[$0.db] ?? $0.db, key: $0.key) }, bound: bound, sink: sink)
    }

    public func close() async { await inner.close() }
}

/// `--db-map SOURCE=TARGET` pairs: the source's database SOURCE is compared with the target's
/// database TARGET. Each database appears once on each side.
public struct DatabaseMap: Sendable, Equatable {
    public private(set) var pairs: [(source: Int, target: Int)]

    /// No mapping: each database is compared with the same number.
    public init() { pairs = [] }

    public init(_ pairs: [(source: Int, target: Int)]) throws {
        self.pairs = pairs
        for (name, values) in [("source", pairs.map(\.source)), ("target", pairs.map(\.target))] {
            if let bad = values.first(where: { $0 < 0 || $0 > 65535 }) {
                throw SlotdiffError(.usage, "--db-map: database \(bad) of the \(name): a database number is 0 to 65535")
            }
            if Set(values).count != values.count {
                throw SlotdiffError(.usage, "--db-map: a \(name) database is named twice (each is compared with one database of the other side)")
            }
        }
    }

    public var isEmpty: Bool { pairs.isEmpty }
    public var sourceToTarget: [Int: Int] { Dictionary(uniqueKeysWithValues: pairs.map { ($0.source, $0.target) }) }
    public var description: String { pairs.map { "\($0.source)=\($0.target)" }.joined(separator: ",") }

    public static func == (a: DatabaseMap, b: DatabaseMap) -> Bool { a.description == b.description }
}
