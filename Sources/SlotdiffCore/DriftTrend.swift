import Foundation

/// The trend of repeated checks during a dual-write period: differences per kind per run, and
/// for each key how many consecutive runs it has been different. A key different once is
/// traffic; a key different run after run is drift.
public struct DriftTrend: Sendable {
    public struct Run: Sendable {
        public var number: Int
        public var startedAt: Date
        public var seconds: Double
        public var differences: [DifferenceKind: Int]
        public var error: String?
    }

    public private(set) var runs: [Run] = []
    /// (db, key) → consecutive runs in which it was different, up to the last run.
    public private(set) var streaks: [KeyID: Int] = [:]
    var lastKind: [KeyID: DifferenceKind] = [:]

    public struct KeyID: Hashable, Sendable {
        public var db: Int
        public var key: [UInt8]
    }

    public init() {}

    /// The trend a watch wrote (`json(driftAfter:)`), to continue it after a restart.
    public init(json data: Data) throws {
        guard let doc = try JSONSerialization.jsonObject(with: data) as? [String: Any],
            let runList = (doc["runs"] ?? doc["passes"]) as? [[String: Any]], let keys = doc["keys"] as? [[String: Any]]
        else {
            throw SlotdiffError(.io, "not a trend file")
        }
        let iso = ISO8601DateFormatter()
        for p in runList {
            var counts: [DifferenceKind: Int] = [:]
            for (k, v) in (p["differences"] as? [String: Int]) ?? [:] { if let kind = DifferenceKind(rawValue: k), v > 0 { counts[kind] = v } }
            runs.append(
                Run(
                    number: (p["run"] ?? p["pass"]) as? Int ?? runs.count + 1,
                    startedAt: (p["started_at"] as? String).flatMap(iso.date(from:)) ?? Date(),
                    seconds: p["seconds"] as? Double ?? 0, differences: counts, error: p["error"] as? String))
        }
        for k in keys {
            let key = (k["key"] as? String).map { Array($0.utf8) } ?? (k["key_base64"] as? String).flatMap { Data(base64Encoded: $0) }.map(Array.init)
            guard let key, let db = k["db"] as? Int, let n = (k["consecutive_runs"] ?? k["consecutive_passes"]) as? Int else { continue }
            let id = KeyID(db: db, key: key)
            streaks[id] = n
            lastKind[id] = (k["kind"] as? String).flatMap(DifferenceKind.init(rawValue:)) ?? .value
        }
    }

    /// Records a run that completed, with the differences it reported.
    public mutating func record(number: Int, startedAt: Date, seconds: Double, differences: [Difference]) {
        var counts: [DifferenceKind: Int] = [:]
        var next: [KeyID: Int] = [:]
        for d in differences {
            counts[d.kind, default: 0] += 1
            let id = KeyID(db: d.db, key: d.key)
            next[id] = (streaks[id] ?? 0) + 1
            lastKind[id] = d.kind
        }
        streaks = next
        lastKind = lastKind.filter { next[$0.key] != nil }
        runs.append(Run(number: number, startedAt: startedAt, seconds: seconds, differences: counts))
    }

    /// A run that could not be done: the streaks stand as they were.
    public mutating func recordFailure(number: Int, startedAt: Date, seconds: Double, error: String) {
        runs.append(Run(number: number, startedAt: startedAt, seconds: seconds, differences: [:], error: error))
    }

    /// Keys different in at least `minimum` consecutive runs, longest first.
    public func persistent(minimum: Int) -> [(KeyID, Int, DifferenceKind)] {
        streaks.filter { $0.value >= minimum }
            .map { ($0.key, $0.value, lastKind[$0.key] ?? .value) }
            .sorted { $0.1 != $1.1 ? $0.1 > $1.1 : Difference.display($0.0.key) < Difference.display($1.0.key) }
    }

    public func json(driftAfter: Int) -> String {
        let iso = ISO8601DateFormatter()
        let runList: [[String: Any]] = runs.map { p in
            var o: [String: Any] = [
                "run": p.number, "started_at": iso.string(from: p.startedAt),
                "seconds": (p.seconds * 1000).rounded() / 1000,
                "differences": Dictionary(uniqueKeysWithValues: DifferenceKind.allCases.map { ($0.rawValue, p.differences[$0] ?? 0) })
            ]
            if let e = p.error { o["error"] = e }
            return o
        }
        let keys: [[String: Any]] = persistent(minimum: 1).map { id, n, kind in
            var o: [String: Any] = ["db": id.db, "consecutive_runs": n, "kind": kind.rawValue, "drift": n >= driftAfter]
            if let t = String(validating: id.key, as: UTF8.self) { o["key"] = t } else { o["key_base64"] = Data(id.key).base64EncodedString() }
            return o
        }
        let doc: [String: Any] = ["runs": runList, "keys": keys, "drift_after_runs": driftAfter]
        let data = try! JSONSerialization.data(withJSONObject: doc, options: [.prettyPrinted, .sortedKeys])
        return String(decoding: data, as: UTF8.self)
    }
}
