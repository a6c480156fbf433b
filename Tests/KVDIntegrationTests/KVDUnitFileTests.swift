import Foundation
import KVDTestSupport
import Testing

/// packaging/systemd: every unit passes `systemd-analyze verify`, and the services' hardening
/// scores at most 1.5 in `systemd-analyze security --offline=yes`.
@Suite("systemd unit files")
struct KVDUnitFileTests {
    static let analyze = "/usr/bin/systemd-analyze"
    static let units = ["kvd.service", "kvd@.service", "kvd.socket", "kvload.service", "kvload.timer"]
    static let unitDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("packaging/systemd").path

    /// The units, copied to a temporary directory with their binaries pointed at the built ones
    /// (verify checks that every ExecStart= program exists).
    func stagedUnits() throws -> String {
        let directory = try TemporaryDirectory.make(prefix: "units")
        let kvd = try Binaries.path("kvd")
        let kvload = try Binaries.path("kvload")
        for unit in Self.units {
            var text = try String(contentsOfFile: Self.unitDirectory + "/" + unit, encoding: .utf8)
            text = text.replacingOccurrences(of: "/usr/bin/kvd ", with: kvd + " ")
                .replacingOccurrences(of: "/usr/bin/kvload ", with: kvload + " ")
            try text.write(toFile: directory + "/" + unit, atomically: true, encoding: .utf8)
        }
        return directory
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: analyze), "systemd-analyze is missing (package systemd)"))
    func everyUnitVerifies() throws {
        let directory = try stagedUnits()
        let result = try ChildProcess.run(Self.analyze, ["verify", "--man=no"] + Self.units.map { directory + "/" + $0 }, timeout: 60)
        #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
        #expect(result.stderr.isEmpty, "\(result.stderr)")
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: analyze), "systemd-analyze is missing (package systemd)"),
          arguments: ["kvd.service", "kvd@.service", "kvload.service"])
    func hardeningExposureIsAtMost1Point5(unit: String) throws {
        let directory = try stagedUnits()
        // --threshold is on the 0-100 scale: 15 is 1.5; above it the command fails.
        let result = try ChildProcess.run(Self.analyze, ["security", "--offline=yes", "--threshold=15", directory + "/" + unit], timeout: 60)
        #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
        let line = result.stdout.split(separator: "\n").first { $0.contains("Overall exposure level") } ?? ""
        let score = line.split(separator: ":").last.flatMap { Double($0.split(separator: " ").first ?? "") }
        let exposure = try #require(score, "no score in: \(result.stdout)")
        #expect(exposure <= 1.5, "\(line)")
    }

    @Test func serviceAndConfigAgreeOnPaths() throws {
        let service = try String(contentsOfFile: Self.unitDirectory + "/kvd.service", encoding: .utf8)
        // RestartPreventExitStatus= applies to the main process only: a failing ExecStartPre would be restarted.
        #expect(!service.split(separator: "\n").contains { $0.hasPrefix("ExecStartPre=") })
        #expect(service.contains("ExecStart=/usr/bin/kvd --config /etc/kvd.conf"))
        #expect(service.contains("Type=notify"))
        #expect(service.contains("RestartPreventExitStatus=78"))
        #expect(service.contains("WatchdogSec="))
        #expect(service.contains("ExecReload=/bin/kill -HUP $MAINPID"))
    }
}
