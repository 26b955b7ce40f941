// What `slotdiff --version` prints. Written by Scripts/buildinfo from VERSION, the one place the
// version is set: the checked-in copy holds VERSION and commit "unknown" (a test checks that it
// matches VERSION); Scripts/package writes the commit in for its release build, then puts this back.
enum BuildInfo {
    static let version = "0.1.0"
    static let commit = "unknown"
    static var versionLine: String { "\(version) (\(commit))" }
}
