import ArgumentParser
import CGlobalExecutor
import CKernels
import Foundation
import HashSlots
import NIOCore
import NIOPosix
import SlotdiffCore

@main
struct Slotdiff: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "slotdiff",
        abstract: "Proves, key by key, whether two Redis/Valkey datasets hold the same data.",
        discussion: """
            Exit status: 0 the two sides match, 1 differences were found, 2 the check could not be done.
            """,
        version: BuildInfo.versionLine,
        subcommands: [Compare.self, Digest.self, Watch.self, Report.self, Repair.self, Info.self]
    )

    /// Every failure, a usage error included, ends with status 2: "the check could not be done".
    static func main() async {
        // Tasks run on the event loops that read the servers' replies: a reply then goes on to
        // be decoded on the thread that read it, without waking a thread of another pool (those
        // hand-overs took a tenth of a live check's CPU in context switches).
        // (Set through the linker, not NIO's takeover: that looks the hook up by name, which the
        // packaged build does not export, and its live checks took 15% more CPU.)
        _ = sd_install_global_enqueue(enqueueOnEventLoop)
        // Read buffers of a few hundred KiB come and go with every pipelined reply: kept in the
        // heap once freed, they are used again instead of being mapped, zeroed and unmapped.
        sd_keep_freed_memory()
        do {
            var command = try parseAsRoot()
            if var async = command as? AsyncParsableCommand {
                try await async.run()
            } else {
                try command.run()
            }
        } catch let e as ExitCode {
            Foundation.exit(e.rawValue)
        } catch {
            let code = exitCode(for: error)
            let message = fullMessage(for: error)
            if code == .success {
                print(message)
                Foundation.exit(0)
            }
            FileHandle.standardError.write(Data((message + "\n").utf8))
            Foundation.exit(2)
        }
    }
}

/// Prints a failure the way every subcommand does and ends with status 2.
func fail(_ message: String) -> ExitCode {
    FileHandle.standardError.write(Data("slotdiff: error: \(message)\n".utf8))
    return ExitCode(2)
}

/// Durations such as `1s`, `500ms`, `2m`; a bare number is seconds. At most 30 days (so no
/// conversion can overflow); a value that is not a number, negative or larger is refused.
struct DurationArg: ExpressibleByArgument {
    var milliseconds: Int64
    /// As written on the command line, for messages.
    var text: String

    static let maxMilliseconds: Double = 30 * 86_400_000

    init?(argument: String) {
        text = argument
        let units: [(String, Double)] = [("ms", 1), ("s", 1000), ("m", 60_000), ("h", 3_600_000)]
        var number = Substring(argument)
        var scale = 1000.0
        if let (suffix, s) = units.first(where: { argument.hasSuffix($0.0) }) {
            number = argument.dropLast(suffix.count)
            scale = s
        }
        guard let v = Double(number), v.isFinite, v >= 0, v * scale <= Self.maxMilliseconds else { return nil }
        milliseconds = Int64(v * scale)
    }

    /// How help shows a default: `2s`, `500ms`, `10m`.
    var defaultValueDescription: String {
        for (suffix, scale) in [("h", Int64(3_600_000)), ("m", 60_000), ("s", 1000)] where milliseconds >= scale && milliseconds % scale == 0 {
            return "\(milliseconds / scale)\(suffix)"
        }
        return "\(milliseconds)ms"
    }
}

extension SlotRange: ExpressibleByArgument {
    public init?(argument: String) { self.init(parsing: argument) }
}

extension ValueType: ExpressibleByArgument {
    public init?(argument: String) { self.init(name: argument) }
    public static var allValueStrings: [String] { allCases.map(\.description) }
}

extension DifferenceKind: ExpressibleByArgument {}

/// A job of Swift's global executor, run on an event loop: the current one when the caller is
/// on one (a task stays on the thread that read its reply), another otherwise. Not isolated to
/// the main actor: the runtime calls it from any thread.
private func enqueueOnEventLoop(_ job: UnsafeMutableRawPointer?) {
    MultiThreadedEventLoopGroup.singleton.any().enqueue(ExecutorJob(unsafeBitCast(job, to: UnownedJob.self)))
}
