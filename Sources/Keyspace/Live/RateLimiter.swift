import Foundation
import NIOConcurrencyHelpers

/// A token bucket shared by the connections of one side: `--qps` caps commands per second.
/// Time is read from a monotonic clock (a wall clock set back would stall it); the clock and
/// the wait are injectable so tests can run it on virtual time.
final class RateLimiter: Sendable {
    typealias Now = @Sendable () -> ContinuousClock.Instant
    typealias Sleep = @Sendable (Duration) async -> Void

    private struct Bucket {
        var tokens: Double
        var last: ContinuousClock.Instant
    }

    private let rate: Double
    private let bucket: NIOLockedValueBox<Bucket>
    private let now: Now
    private let sleep: Sleep

    init(qps: Int, now: @escaping Now = { ContinuousClock.now }, sleep: @escaping Sleep = { try? await Task.sleep(for: $0) }) {
        rate = Double(max(1, qps))
        self.now = now
        self.sleep = sleep
        bucket = NIOLockedValueBox(Bucket(tokens: Double(max(1, qps)), last: now()))
    }

    /// Waits until `n` commands may be sent. A batch larger than one second's worth goes when
    /// the bucket is full, and leaves it in debt.
    func acquire(_ n: Int) async {
        while true {
            let t = now()
            let wait: Double = bucket.withLockedValue { b in
                let elapsed = b.last.duration(to: t)
                b.tokens = min(rate, b.tokens + Double(elapsed.components.seconds) * rate + Double(elapsed.components.attoseconds) * 1e-18 * rate)
                b.last = t
                if b.tokens >= Double(n) || (b.tokens >= rate * 0.99 && Double(n) > rate) {
                    b.tokens -= Double(n)
                    return 0
                }
                return (Double(n) - b.tokens) / rate
            }
            if wait <= 0 { return }
            await sleep(.nanoseconds(Int64(min(wait, 1) * 1e9)))
        }
    }
}
