import Foundation

/// A token bucket shared by the workers of one side: `--qps` caps commands per second.
final class RateLimiter: @unchecked Sendable {
    private let rate: Double
    private var tokens: Double
    private var last = Date()
    private let lock = NSLock()

    init(qps: Int) {
        rate = Double(max(1, qps))
        tokens = rate
    }

    /// Waits until `n` commands may be sent.
    func acquire(_ n: Int) async {
        while true {
            let wait: Double = lock.withLock {
                let now = Date()
                tokens = min(rate, tokens + now.timeIntervalSince(last) * rate)
                last = now
                if tokens >= Double(n) || (tokens >= rate * 0.99 && Double(n) > rate) {
                    tokens -= Double(n)
                    return 0
                }
                return (Double(n) - tokens) / rate
            }
            if wait <= 0 { return }
            try? await Task.sleep(nanoseconds: UInt64(min(wait, 1) * 1e9))
        }
    }
}
