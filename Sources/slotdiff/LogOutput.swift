import ArgumentParser
import Foundation
import Logging

/// What an operator may need to see while a check runs (reconnects, redirects followed,
/// retries, fallbacks, spills, restarted listings), as lines on standard error:
/// `slotdiff: warning: message endpoint=…`. On a terminal the progress line is cleared
/// first, so the two never share a line (the progress is drawn again on its next tick).
struct TerminalLogHandler: LogHandler {
    var logLevel: Logger.Level
    var metadata: Logger.Metadata = [:]
    let label: String
    static let tty = isatty(2) != 0
    private static let lock = NSLock()

    init(label: String, level: Logger.Level) {
        self.label = label
        logLevel = level
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var fields = metadata
        if let more = event.metadata { fields.merge(more) { $1 } }
        let tail = fields.sorted { $0.key < $1.key }.map { " \($0.key)=\($0.value)" }.joined()
        let line = (Self.tty ? "\r\u{1B}[K" : "") + "slotdiff: \(event.level): \(event.message)\(tail)\n"
        Self.lock.withLock { FileHandle.standardError.write(Data(line.utf8)) }
    }

    /// Installs the handler once per process (a watch runs many checks).
    static func bootstrap(level: Logger.Level) {
        lock.withLock {
            if bootstrapped { return }
            bootstrapped = true
            LoggingSystem.bootstrap { TerminalLogHandler(label: $0, level: level) }
        }
    }

    nonisolated(unsafe) private static var bootstrapped = false
}

extension Logger.Level: @retroactive ExpressibleByArgument {}
