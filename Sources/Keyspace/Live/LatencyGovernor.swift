import Foundation
import Logging
import NIOConcurrencyHelpers
import RESP

/// `--max-latency D`: keeps a side's servers answering their applications within D while the
/// check reads them. A connection of its own per node sends PING every 100 ms. The median of the
/// last five round trips (the slowest node's) decides, so that one late reply on a busy machine
/// does not: over D, the side's request rate drops to 70% of what it really sent (at most once
/// per 500 ms); under D, it grows again by a fixed step (5% of the highest rate reached) —
/// additive increase, multiplicative decrease, as TCP does. The round trips and the rate are kept
/// for the summary.
final class LatencyGovernor: Sendable {
    static let interval = Duration.milliseconds(100)
    static let minimumRate = 10.0

    private struct State {
        var samples: [Double] = []
        var lowestRate = Double.infinity
        var started = ContinuousClock.now
        var throttled = 0
    }

    let limit: Duration
    private let limiter: RateLimiter
    private let state = NIOLockedValueBox(State())
    private let task = NIOLockedValueBox<Task<Void, Never>?>(nil)
    private let ceiling: Double

    init(limit: Duration, limiter: RateLimiter) {
        self.limit = limit
        self.limiter = limiter
        ceiling = limiter.rate
    }

    /// Starts probing `endpoints` (with the options the side's own connections use).
    func start(_ endpoints: [(RedisEndpoint, RedisConnectionOptions)], logger: Logger) {
        let t = Task { [self] in await run(endpoints, logger: logger) }
        task.withLockedValue { $0 = t }
    }

    func stop() {
        task.withLockedValue { $0?.cancel() }
    }

    private func run(_ endpoints: [(RedisEndpoint, RedisConnectionOptions)], logger: Logger) async {
        var connections: [RedisConnection?] = Array(repeating: nil, count: endpoints.count)
        defer {
            let open = connections.compactMap { $0 }
            Task { for c in open { await c.close() } }
        }
        let clock = ContinuousClock()
        let limitSeconds = Self.seconds(limit)
        var lastDecrease = clock.now - .seconds(1)
        var lastSent = limiter.sent
        var lastTime = clock.now
        var peak = 0.0
        var recent: [Double] = []
        while !Task.isCancelled {
            try? await Task.sleep(for: Self.interval)
            if Task.isCancelled { break }
            // The slowest node's round trip; one that cannot be reached counts as over the limit.
            var slowest = 0.0
            for (i, (endpoint, options)) in endpoints.enumerated() {
                let t0 = clock.now
                do {
                    if connections[i] == nil { connections[i] = try await RedisConnection.connect(to: endpoint, options: options) }
                    _ = try await connections[i]!.send("PING", timeout: max(.seconds(1), limit * 10))
                    slowest = max(slowest, Self.seconds(t0.duration(to: clock.now)))
                } catch {
                    connections[i] = nil
                    slowest = max(slowest, limitSeconds * 2)
                }
            }
            recent.append(slowest)
            if recent.count > 5 { recent.removeFirst() }
            let median = recent.sorted()[recent.count / 2]
            let now = clock.now
            let sent = limiter.sent
            let observed = Double(sent - lastSent) / max(1e-3, Self.seconds(lastTime.duration(to: now)))
            lastSent = sent
            lastTime = now
            var rate = limiter.rate
            if median > limitSeconds {
                if lastDecrease.duration(to: now) >= .milliseconds(500) {
                    rate = max(Self.minimumRate, min(rate, max(observed, Self.minimumRate)) * 0.7)
                    limiter.rate = rate
                    lastDecrease = now
                    logger.debug("round trip \(Self.text(median)) over --max-latency: \(Int(rate)) commands/s")
                }
            } else if rate < ceiling {
                rate += max(Self.minimumRate, peak * 0.05)
                // Without --qps, a rate well past the highest reached is no limit any more.
                rate = !ceiling.isFinite && peak > 0 && rate >= peak * 1.5 ? .infinity : min(ceiling, rate)
                limiter.rate = rate
            }
            peak = max(peak, observed)
            state.withLockedValue { s in
                s.samples.append(slowest)
                if rate.isFinite {
                    s.lowestRate = min(s.lowestRate, rate)
                    s.throttled += 1
                }
            }
        }
    }

    /// What the summary says: the round trips held and the rate reached.
    var report: String {
        let s = state.withLockedValue { $0 }
        let sorted = s.samples.sorted()
        func q(_ p: Double) -> String {
            sorted.isEmpty ? "-" : Self.text(sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))])
        }
        let seconds = max(1e-3, Self.seconds(s.started.duration(to: .now)))
        var r = "round trip p50 \(q(0.5)), p99 \(q(0.99)), max \(q(1)) (limit \(Self.text(Self.seconds(limit)))); "
        r += "\(Int(Double(limiter.sent) / seconds)) commands/s on average"
        if s.throttled > 0 {
            r += String(
                format: ", slowed down %.0f%% of the time, to %.0f commands/s at the lowest", 100 * Double(s.throttled) / Double(max(1, s.samples.count)),
                s.lowestRate)
        }
        return r
    }

    static func seconds(_ d: Duration) -> Double {
        Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
    }

    static func text(_ seconds: Double) -> String {
        seconds < 0.001 ? String(format: "%.0f µs", seconds * 1e6) : String(format: "%.1f ms", seconds * 1000)
    }
}
