import Foundation
import TestSupport
import Testing

/// VERSION is the one place the version is set; the checked-in BuildInfo.swift must carry it
/// (Scripts/buildinfo writes it), and `--version` prints it with the commit.
@Suite struct VersionTests {
    static func versionFile() throws -> String {
        try String(contentsOf: TestPaths.root.appendingPathComponent("VERSION"), encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @Test func checkedInBuildInfoMatchesVersionFile() async throws {
        try await offPool {
            let version = try Self.versionFile()
            let source = try String(contentsOf: TestPaths.root.appendingPathComponent("Sources/slotdiff/BuildInfo.swift"), encoding: .utf8)
            #expect(
                source.contains("static let version = \"\(version)\""),
                "BuildInfo.swift does not hold VERSION \(version): run `bash Scripts/buildinfo` and commit it")
            #expect(
                source.contains("static let commit = \"unknown\""),
                "BuildInfo.swift holds a commit: Scripts/package did not put the checked-in copy back")
        }
    }

    @Test func versionPrintsVersionAndCommit() async throws {
        try await offPool {
            let r = try slotdiff(["--version"])
            #expect(r.status == 0, "\(r.stderr)")
            let line = r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(line.hasPrefix("\(try Self.versionFile()) ("), "\(line)")
            #expect(line.hasSuffix(")"), "\(line)")
        }
    }
}
