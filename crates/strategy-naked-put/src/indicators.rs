//! Indicators on daily closes.

/// Simple moving average of the last `n` values, if there are that many.
pub fn sma(closes: &[f64], n: usize) -> Option<f64> {
    if n == 0 || closes.len() < n {
        return None;
    }
    let window = &closes[closes.len() - n..];
    Some(window.iter().sum::<f64>() / n as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sma_of_the_last_n() {
        assert_eq!(sma(&[1.0, 2.0, 3.0, 4.0], 2), Some(3.5));
        assert_eq!(sma(&[1.0], 2), None);
        assert_eq!(sma(&[1.0], 0), None);
    }
}
