//! A fixed-capacity ring buffer: the storage of every history series.

/// A ring buffer of at most `capacity` values: pushing past it drops the oldest. Storage
/// grows on demand up to `capacity` and never beyond.
#[derive(Debug, Clone)]
pub struct Ring<T> {
    buf: Vec<T>,
    /// Index of the oldest value once the ring is full (0 before).
    head: usize,
    capacity: usize,
}

impl<T: Copy> Ring<T> {
    /// An empty ring holding at most `capacity` (at least 1) values.
    pub fn new(capacity: usize) -> Ring<T> {
        Ring {
            buf: Vec::new(),
            head: 0,
            capacity: capacity.max(1),
        }
    }

    pub fn push(&mut self, value: T) {
        if self.buf.len() < self.capacity {
            if self.buf.len() == self.buf.capacity() {
                // Grow geometrically but never past `capacity` (Vec's doubling would).
                let extra = self.buf.len().max(4).min(self.capacity - self.buf.len());
                self.buf.reserve_exact(extra);
            }
            self.buf.push(value);
        } else {
            self.buf[self.head] = value;
            self.head = (self.head + 1) % self.capacity;
        }
    }

    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The newest value.
    pub fn last(&self) -> Option<T> {
        self.back(0)
    }

    /// The value `n` pushes before the newest (`back(0)` is the newest).
    pub fn back(&self, n: usize) -> Option<T> {
        let len = self.buf.len();
        if n >= len {
            return None;
        }
        Some(self.buf[(self.head + len - 1 - n) % len])
    }

    pub(crate) fn last_mut(&mut self) -> Option<&mut T> {
        let len = self.buf.len();
        if len == 0 {
            return None;
        }
        Some(&mut self.buf[(self.head + len - 1) % len])
    }

    /// Values oldest to newest.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = T> + ExactSizeIterator + '_ {
        let len = self.buf.len();
        (0..len).map(move |i| self.buf[(self.head + i) % len])
    }

    /// Heap bytes held now.
    pub fn heap_bytes(&self) -> usize {
        self.buf.capacity() * size_of::<T>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest_values_in_order() {
        let mut r = Ring::new(3);
        assert!(r.is_empty());
        assert_eq!(r.last(), None);
        for v in 1..=2 {
            r.push(v);
        }
        assert_eq!(r.iter().collect::<Vec<_>>(), vec![1, 2]);
        for v in 3..=7 {
            r.push(v);
        }
        assert_eq!(r.iter().collect::<Vec<_>>(), vec![5, 6, 7]);
        assert_eq!(r.iter().rev().collect::<Vec<_>>(), vec![7, 6, 5]);
        assert_eq!((r.len(), r.capacity()), (3, 3));
        assert_eq!(
            (r.last(), r.back(1), r.back(2), r.back(3)),
            (Some(7), Some(6), Some(5), None)
        );
        *r.last_mut().unwrap() = 70;
        assert_eq!(r.iter().collect::<Vec<_>>(), vec![5, 6, 70]);
    }

    #[test]
    fn storage_never_exceeds_capacity() {
        for cap in [1, 2, 3, 5, 600, 667, 1000] {
            let mut r = Ring::new(cap);
            for v in 0..(3 * cap as u64 + 7) {
                r.push(v);
                assert!(r.buf.capacity() <= cap, "cap {cap}: {}", r.buf.capacity());
            }
            assert_eq!(r.len(), cap);
            let want: Vec<u64> = (2 * cap as u64 + 7..3 * cap as u64 + 7).collect();
            assert_eq!(r.iter().collect::<Vec<_>>(), want);
        }
    }

    #[test]
    fn zero_capacity_means_one() {
        let mut r = Ring::new(0);
        r.push(1);
        r.push(2);
        assert_eq!(r.iter().collect::<Vec<_>>(), vec![2]);
    }
}
