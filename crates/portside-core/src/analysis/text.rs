//! Numbers in sentences, shared by alert messages and the live view.

/// An exact count with thousands separators, for sentences: `23004` -> `23,004` (the live
/// view's compact `12.3k` is for columns).
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn thousands() {
        assert_eq!(super::thousands(0), "0");
        assert_eq!(super::thousands(999), "999");
        assert_eq!(super::thousands(1000), "1,000");
        assert_eq!(super::thousands(23_004), "23,004");
        assert_eq!(super::thousands(1_234_567), "1,234,567");
    }
}
