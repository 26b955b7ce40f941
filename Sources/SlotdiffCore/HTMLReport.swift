import Foundation
import HashSlots

/// One self-contained HTML page about diff logs: the counts per kind and per type, a 128×128
/// heat map of differences per hash slot (where drift concentrates: which shard, which slot
/// range), and the first differing keys of each kind. No script, no external resource.
public struct HTMLReport {
    public var title: String
    public var sources: [String]
    public private(set) var perKind: [DifferenceKind: Int] = [:]
    public private(set) var perType: [String: Int] = [:]
    public private(set) var perSlot = [Int](repeating: 0, count: HashSlot.count)
    public private(set) var firstKeys: [DifferenceKind: [Difference]] = [:]
    public var keysPerKind = 20

    public init(title: String, sources: [String]) {
        self.title = title
        self.sources = sources
    }

    public var total: Int { perKind.values.reduce(0, +) }

    public mutating func add(_ d: Difference) {
        perKind[d.kind, default: 0] += 1
        perType[(d.source ?? d.target).map { "\($0.type)" } ?? "unknown", default: 0] += 1
        perSlot[Int(d.slot) & 0x3FFF] += 1
        if firstKeys[d.kind, default: []].count < keysPerKind { firstKeys[d.kind, default: []].append(d) }
    }

    static func escape(_ s: String) -> String {
        var o = ""
        for c in s {
            switch c {
            case "&": o += "&amp;"
            case "<": o += "&lt;"
            case ">": o += "&gt;"
            case "\"": o += "&quot;"
            default: o.append(c)
            }
        }
        return o
    }

    /// The heat map: one 4×4 px cell per slot, row-major (slot = row × 128 + column); colour by
    /// differences in that slot relative to the busiest slot.
    func heatMap() -> String {
        let maxCount = max(1, perSlot.max() ?? 1)
        var cells = ""
        for (slot, n) in perSlot.enumerated() where n > 0 {
            let level = 0.25 + 0.75 * Double(n) / Double(maxCount)
            cells +=
                "<rect x=\"\((slot % 128) * 4)\" y=\"\((slot / 128) * 4)\" width=\"4\" height=\"4\" fill=\"rgba(200,30,30,\(String(format: "%.2f", level)))\"><title>slot \(slot): \(n)</title></rect>"
        }
        return """
            <svg id="heatmap" xmlns="http://www.w3.org/2000/svg" width="512" height="512" viewBox="0 0 512 512">\
            <rect width="512" height="512" fill="#eef3ee"/>\(cells)</svg>
            """
    }

    public func html() -> String {
        let kinds = DifferenceKind.allCases.map { k in
            "<tr><td>\(k.rawValue)</td><td class=\"n\" id=\"count-\(k.rawValue)\">\(perKind[k] ?? 0)</td></tr>"
        }.joined()
        let types = perType.sorted { $0.key < $1.key }.map { "<tr><td>\(Self.escape($0.key))</td><td class=\"n\">\($0.value)</td></tr>" }.joined()
        let busiest = perSlot.enumerated().filter { $0.element > 0 }.sorted { $0.element > $1.element }.prefix(10)
            .map { "<tr><td>\($0.offset)</td><td class=\"n\">\($0.element)</td></tr>" }.joined()
        func side(_ s: SideState?) -> String {
            guard let s else { return "—" }
            let exp = s.expireMs.map { ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: Double($0) / 1000)) } ?? "no expiry"
            return "\(s.type), \(exp), \(s.digest.description.prefix(8))"
        }
        var keySections = ""
        for k in DifferenceKind.allCases {
            guard let list = firstKeys[k], !list.isEmpty else { continue }
            let rows = list.map { d in
                let row =
                    "<tr><td class=\"key\">\(Self.escape(d.displayKey))</td><td>\(d.db)</td><td>\(d.slot)</td><td>\(Self.escape(side(d.source)))</td><td>\(Self.escape(side(d.target)))</td></tr>"
                // What differs, under the key: the short form, one line per element.
                guard let detail = d.detail else { return row }
                let lines = Explain.lines(detail, limit: 10).map { "<li>\(Self.escape($0))</li>" }.joined()
                return row + "<tr class=\"detail\"><td colspan=\"5\"><ul>\(lines)</ul></td></tr>"
            }.joined()
            let more = (perKind[k] ?? 0) > list.count ? "<p>… and \((perKind[k] ?? 0) - list.count) more</p>" : ""
            keySections +=
                "<h3>\(k.rawValue)</h3><table class=\"keys\"><tr><th>key</th><th>db</th><th>slot</th><th>source</th><th>target</th></tr>\(rows)</table>\(more)"
        }
        return """
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8"><title>\(Self.escape(title))</title>
            <style>
            body { font: 14px system-ui, sans-serif; margin: 24px; color: #222; }
            h1 { font-size: 20px; } h2 { font-size: 16px; margin-top: 28px; } h3 { font-size: 14px; }
            table { border-collapse: collapse; margin: 8px 0; } td, th { border: 1px solid #ccc; padding: 3px 8px; text-align: left; }
            td.n { text-align: right; } td.key { font-family: monospace; }
            tr.detail td { font-family: monospace; font-size: 12px; background: #f7f7f2; } tr.detail ul { margin: 0; padding-left: 18px; }
            .row { display: flex; gap: 32px; align-items: flex-start; flex-wrap: wrap; }
            .result { font-size: 18px; font-weight: bold; color: \(total == 0 ? "#1a7a1a" : "#b01010"); }
            </style></head><body>
            <h1>\(Self.escape(title))</h1>
            <p>Logs: \(sources.map { Self.escape($0) }.joined(separator: ", "))</p>
            <p class="result" id="total">\(total == 0 ? "No differences" : "\(total) differences")</p>
            <div class="row">
            <div><h2>By kind</h2><table>\(kinds)</table><h2>By type</h2><table>\(types)</table></div>
            <div><h2>Differences per hash slot</h2><p>128 × 128 cells, slot = row × 128 + column; darker = more.</p>\(heatMap())</div>
            <div><h2>Busiest slots</h2><table><tr><th>slot</th><th>differences</th></tr>\(busiest)</table></div>
            </div>
            <h2>First differing keys</h2>\(keySections.isEmpty ? "<p>None.</p>" : keySections)
            </body></html>
            """
    }
}
