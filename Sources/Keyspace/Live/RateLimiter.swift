import Foundation
import NIOConcurrencyHelpers

/// A token bucket shared by the connections of one side: `--qps` caps commands per second, and
/// `--max-latency` moves the rate (`LatencyGovernor`; infinite: no limit). Time is read from a
/// monotonic clock (a wall clock set back would stall it); the clock and the wait are
/// injectable so tests can run it on virtual time.
final class RateLimiter: Sendable {
    typealias Now = @Sendable () -> ContinuousClock.Instant
    typealias Sleep = @Sendable (Duration) async -> Void

    private struct Bucket {
        var rate: Double
        var tokens: Double
        var last: ContinuousClock.Instant
        /// Commands let through, for the rate reached.
        var sent = 0
    }

    private let bucket: NIOLockedValueBox<Bucket>
    private let now: Now
    private let sleep: Sleep

    init(qps: Int?, now: @escaping Now = { ContinuousClock.now }, sleep: @escaping Sleep = { try? await Task.sleep(for: $0) }) {
        let rate = qps.map { Double(max(1, $0)) } ?? .infinity
        self.now = now
        self.sleep = sleep
        bucket = NIOLockedValueBox(Bucket(rate: rate, tokens: rate.isFinite ? rate : 0, last: now()))
    }

    /// Commands per second now (infinite: no limit).
    var rate: Double {
        get { bucket.withLockedValue { $0.rate } }
        set {
            bucket.withLockedValue { b in
                b.rate = max(1, newValue)
                if b.rate.isFinite { b.tokens = min(b.tokens, b.rate) }
            }
        }
    }

    /// Commands let through so far.
    var sent: Int { bucket.withLockedValue { $0.sent } }

    /// Waits until `n` commands may be sent. A batch larger than one second's worth goes when
    /// the bucket is full, and leaves it in debt.
    func acquire(_ n: Int) async {
        while true {
            let t = now()
            let wait: Double = bucket.withLockedValue { b in
                let rate = b.rate
                if !rate.isFinite {
                    b.sent += n
                    b.last = t
                    return 0
                }
                let elapsed = b.last.duration(to: t)
                b.tokens = min(rate, b.tokens + Double(elapsed.components.seconds) * rate + Double(elapsed.components.attoseconds) * 1e-18 * rate)
                b.last = t
                if b.tokens >= Double(n) || (b.tokens >= rate * 0.99 && Double(n) > rate) {
                    b.tokens -= Double(n)
                    b.sent += n
                    return 0
                }
                return (Double(n) - b.tokens) / rate
            }
            if wait <= 0 { return }
            await sleep(.nanoseconds(Int64(min(wait, 1) * 1e9)))
        }
    }
}
