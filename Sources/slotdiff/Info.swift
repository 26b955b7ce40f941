import ArgumentParser
import Foundation
import RDB
import SlotdiffCore

extension Slotdiff {
    struct Info: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Read dump files to the end (every value decoded and digested, checksum verified) and describe them.")

        @Argument(help: "Dump files (.rdb, .rdb.zst, - for standard input).") var files: [String]
        @Flag(help: "Print JSON.") var json = false

        func run() throws {
            var docs: [[String: Any]] = []
            for path in files {
                let start = Date()
                var typeCounts = [Int](repeating: 0, count: 256)
                // Keys per database: the usual 16 counted in an array, any other in the dictionary.
                var perDB: [Int: Int] = [:], firstDBs = [Int](repeating: 0, count: 16)
                var expiring = 0
                let parser: RDBFileParser
                do {
                    parser = try RDBFileParser(path: path)
                    try parser.parse(digester: CanonicalDigester()) { ev in
                        typeCounts[Int(ev.type.rawValue)] += 1
                        if ev.db >= 0 && ev.db < firstDBs.count { firstDBs[ev.db] += 1 } else { perDB[ev.db, default: 0] += 1 }
                        if ev.expireMs != nil { expiring += 1 }
                    }
                } catch let e as RDBError {
                    throw fail(e.description)
                }
                let secs = Date().timeIntervalSince(start)
                for (db, n) in firstDBs.enumerated() where n > 0 { perDB[db] = n }
                var perType: [String: Int] = [:]
                for t in ValueType.allCases where typeCounts[Int(t.rawValue)] > 0 { perType["\(t)"] = typeCounts[Int(t.rawValue)] }
                let i = parser.info
                let mbps = secs > 0 ? Double(i.bytes) / secs / 1e6 : 0
                let doc: [String: Any] = [
                    "path": path, "rdb_version": i.valkey ? "VALKEY\(i.version)" : "\(i.version)",
                    "producer": i.producer ?? "unknown", "keys": i.keys, "bytes": i.bytes,
                    "checksum": i.checksum.rawValue, "keys_by_type": perType,
                    "keys_by_db": Dictionary(uniqueKeysWithValues: perDB.map { ("\($0.key)", $0.value) }),
                    "keys_with_expiry": expiring, "seconds": secs, "mb_per_second": (mbps * 10).rounded() / 10
                ]
                docs.append(doc)
                if !json {
                    print(
                        "\(path): RDB \(doc["rdb_version"]!), \(i.producer ?? "producer unknown"), \(i.keys) keys, \(i.bytes) bytes, checksum \(i.checksum.rawValue)"
                    )
                    print("  by type: " + perType.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
                    print(
                        "  by db:   " + perDB.sorted { $0.key < $1.key }.map { "db\($0.key) \($0.value)" }.joined(separator: ", ")
                            + "; \(expiring) with an expiry")
                    print(String(format: "  read and digested in %.3f s (%.1f MB/s)", secs, mbps))
                }
            }
            if json {
                let data = try JSONSerialization.data(withJSONObject: docs.count == 1 ? docs[0] : docs, options: [.prettyPrinted, .sortedKeys])
                print(String(decoding: data, as: UTF8.self))
            }
        }
    }
}
