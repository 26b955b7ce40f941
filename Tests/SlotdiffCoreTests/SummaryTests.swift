import Foundation
import SlotdiffCore
import Testing

/// The summary file is one typed value: what the session writes is what `report` reads back,
/// every field included, in the snake_case layout operators' scripts read.
struct SummaryTests {
    func sample() -> Summary {
        var counts = CompareCounts()
        counts.sourceKeys = 10
        counts.targetKeys = 9
        counts.compared = 8
        counts.matched = 6
        counts.expired = 1
        counts.differences = [.missing: 2, .value: 2]
        counts.differencesByType = ["hash": 3, "string": 1]
        var s = Summary(
            source: .init(spec: "redis://a:6379", inputs: [["node": "a:6379"]]),
            target: .init(spec: "dir/", inputs: [["path": "dir/x.rdb"]], skipped: [["path": "dir/nodes.conf", "reason": "not a dump"]]),
            counts: counts)
        s.filteredOut = 4
        s.emptySkipped = 1
        s.seconds = 1.25
        s.log = "/tmp/x.jsonl.zst"
        s.ttlToleranceMs = 500
        s.startedAt = Date(timeIntervalSince1970: 1_800_000_000)
        s.mode = "length"
        s.passes = 3
        s.recheck = .init(rounds: 3, firstRound: 7, resolvedPerRound: [2, 1, 0])
        return s
    }

    @Test func roundTrips() throws {
        let s = sample()
        let back = try Summary(json: Data(s.json().utf8))
        #expect(back.counts == s.counts)
        #expect(back.source.spec == s.source.spec && back.source.inputs == s.source.inputs)
        #expect(back.target.skipped == s.target.skipped)
        #expect(back.filteredOut == 4 && back.emptySkipped == 1 && back.ttlToleranceMs == 500)
        #expect(back.startedAt == s.startedAt && back.seconds == 1.25 && back.log == s.log)
        #expect(back.mode == "length" && back.passes == 3 && back.interruptedPassesLeft == nil)
        #expect(back.recheck?.firstRound == 7 && back.recheck?.resolvedPerRound == [2, 1, 0])
        #expect(back.json() == s.json())
    }

    @Test func layoutIsTheDocumentedOne() throws {
        var s = sample()
        s.interruptedPassesLeft = 2
        let o = try JSONSerialization.jsonObject(with: Data(s.json().utf8)) as! [String: Any]
        #expect(o["result"] as? String == "interrupted")
        #expect((o["source"] as? [String: Any])?["keys"] as? Int == 10)
        #expect((o["target"] as? [String: Any])?["skipped"] != nil && (o["source"] as? [String: Any])?["skipped"] == nil)
        #expect((o["differences"] as? [String: Int]) == ["missing": 2, "extra": 0, "type": 0, "value": 2, "ttl": 0, "duplicate": 0])
        #expect(o["differences_total"] as? Int == 4 && o["passes_left"] as? Int == 2)
        #expect((o["recheck"] as? [String: Any])?["first_round_differences"] as? Int == 7)
        #expect(o["started_at"] as? String == "2027-01-15T08:00:00Z")
        #expect(o["empty_collections_skipped"] as? Int == 1 && o["filtered_out"] as? Int == 4 && o["ttl_tolerance_ms"] as? Int == 500)
    }

    @Test func aSummaryOfAnotherShapeIsRefused() {
        #expect(throws: (any Error).self) { try Summary(json: Data("{\"result\":\"match\"}".utf8)) }
        var o = try! JSONSerialization.jsonObject(with: Data(sample().json().utf8)) as! [String: Any]
        o["differences"] = ["renamed": 1]
        #expect(throws: (any Error).self) { try Summary(json: JSONSerialization.data(withJSONObject: o)) }
    }
}
