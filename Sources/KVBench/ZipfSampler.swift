import Foundation

/// Zipf-distributed ranks 0..<count (rank 0 the most frequent; P(k) ∝ 1/(k+1)^exponent), drawn in O(1) time and
/// memory by rejection-inversion (Hörmann and Derflinger, 1996), so ten million keys need no probability table.
public struct ZipfSampler: Sendable {
    public let count: Int
    public let exponent: Double
    private let hIntegralX1: Double
    private let hIntegralCount: Double
    private let squeeze: Double

    /// - Precondition: `count >= 1` and `exponent > 0`.
    public init(count: Int, exponent: Double) {
        precondition(count >= 1 && exponent > 0, "Zipf needs at least one key and a positive exponent")
        self.count = count
        self.exponent = exponent
        hIntegralX1 = Self.hIntegral(1.5, exponent) - 1
        hIntegralCount = Self.hIntegral(Double(count) + 0.5, exponent)
        squeeze = 2 - Self.hIntegralInverse(Self.hIntegral(2.5, exponent) - Self.h(2, exponent), exponent)
    }

    /// One rank in 0..<count.
    public func sample(_ random: inout SplitMix64) -> Int {
        while true {
            let u = hIntegralCount + random.nextUnitDouble() * (hIntegralX1 - hIntegralCount)
            let x = Self.hIntegralInverse(u, exponent)
            var k = Int(x + 0.5)
            if k < 1 { k = 1 } else if k > count { k = count }
            if Double(k) - x <= squeeze || u >= Self.hIntegral(Double(k) + 0.5, exponent) - Self.h(Double(k), exponent) {
                return k - 1
            }
        }
    }

    private static func h(_ x: Double, _ exponent: Double) -> Double { exp(-exponent * log(x)) }

    private static func hIntegral(_ x: Double, _ exponent: Double) -> Double {
        let logX = log(x)
        return helper2((1 - exponent) * logX) * logX
    }

    private static func hIntegralInverse(_ x: Double, _ exponent: Double) -> Double {
        var t = x * (1 - exponent)
        if t < -1 { t = -1 }
        return exp(helper1(t) * x)
    }

    /// log1p(x)/x, continuous at 0.
    private static func helper1(_ x: Double) -> Double {
        abs(x) > 1e-8 ? log1p(x) / x : 1 - x * (0.5 - x * (1.0 / 3 - 0.25 * x))
    }

    /// expm1(x)/x, continuous at 0.
    private static func helper2(_ x: Double) -> Double {
        abs(x) > 1e-8 ? expm1(x) / x : 1 + x * 0.5 * (1 + x * (1.0 / 3) * (1 + 0.25 * x))
    }
}
