//! The built-in reference input: synthetic photos, the same on every machine, that
//! `--conv-precision auto` times the candidates on and compares their features with, and
//! that a server-wide int8 base is calibrated on until a job calibrates on its own photos.

/// Images in the reference batch, and their side.
pub const BATCH: usize = 4;
pub const SIDE: usize = 150;

/// Smooth, varied synthetic photos: the same on every machine, with the gradients and
/// edges real photos have (a constant image would make every candidate look exact).
pub fn reference_images() -> Vec<Vec<u8>> {
    (0..BATCH)
        .map(|i| {
            let phase = i as f32 * 0.7;
            (0..SIDE * SIDE * 3)
                .map(|j| {
                    let (pixel, c) = (j / 3, j % 3);
                    let (x, y) = ((pixel % SIDE) as f32, (pixel / SIDE) as f32);
                    let wave =
                        ((x * 0.06 + phase) * (c as f32 + 1.0)).sin() * (y * 0.045 - phase).cos();
                    let edge = if (x - 75.0).abs() + (y - 75.0).abs() < 40.0 + 5.0 * i as f32 {
                        60.0
                    } else {
                        0.0
                    };
                    (110.0 + 80.0 * wave + edge).clamp(0.0, 255.0) as u8
                })
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_images_are_varied_and_fixed() {
        let images = reference_images();
        assert_eq!(images.len(), BATCH);
        assert_eq!(images, reference_images());
        assert_ne!(images[0], images[1]);
        let distinct: std::collections::BTreeSet<u8> = images[0].iter().copied().collect();
        assert!(distinct.len() > 100, "{} distinct values", distinct.len());
    }
}
