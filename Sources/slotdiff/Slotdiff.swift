import ArgumentParser
import Foundation
import SlotdiffCore

@main
struct Slotdiff: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "slotdiff",
        abstract: "Proves, key by key, whether two Redis/Valkey datasets hold the same data.",
        discussion: """
            Exit status: 0 the two sides match, 1 differences were found, 2 the check could not be done.
            """,
        version: "0.1.0",
        subcommands: [Compare.self, Watch.self, Report.self, Info.self]
    )

    /// Every failure, a usage error included, ends with status 2: "the check could not be done".
    static func main() async {
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

/// Durations such as `1s`, `500ms`, `2m`; a bare number is seconds.
struct DurationArg: ExpressibleByArgument {
    var milliseconds: Int64

    init?(argument: String) {
        let units: [(String, Double)] = [("ms", 1), ("s", 1000), ("m", 60_000), ("h", 3_600_000)]
        for (suffix, scale) in units where argument.hasSuffix(suffix) {
            guard let v = Double(argument.dropLast(suffix.count)), v >= 0 else { return nil }
            milliseconds = Int64(v * scale)
            return
        }
        guard let v = Double(argument), v >= 0 else { return nil }
        milliseconds = Int64(v * 1000)
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
