//! Live data augmentation as Keras's `ImageDataGenerator` does it: a random affine warp per
//! image (rotation, shifts, shear, zoom), then a random horizontal flip, with "nearest" fill
//! (edge pixels repeated) and bilinear sampling (Keras's `order=1`).
//!
//! The random parameters are drawn on the host from a seeded RNG; the warp itself is one
//! batched `grid_sample` on the device. Warping after preprocessing is the same as before it,
//! because every preprocessing here is per-channel affine and bilinear sampling is linear.

use burn::prelude::*;
use burn::tensor::ops::{GridSampleOptions, GridSamplePaddingMode, InterpolateMode};
use rand::Rng;
use serde::{Deserialize, Serialize};

/// The seed's settings: rotation 40°, shifts 0.2, shear 0.2, zoom 0.2, horizontal flip.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct Augmentation {
    pub rotation_degrees: f64,
    pub width_shift: f64,
    pub height_shift: f64,
    /// In degrees, as Keras interprets `shear_range`.
    pub shear_degrees: f64,
    pub zoom: f64,
    pub horizontal_flip: bool,
}

impl Default for Augmentation {
    fn default() -> Self {
        Self {
            rotation_degrees: 40.0,
            width_shift: 0.2,
            height_shift: 0.2,
            shear_degrees: 0.2,
            zoom: 0.2,
            horizontal_flip: true,
        }
    }
}

impl Augmentation {
    /// One random 2×3 matrix in grid_sample's normalised (x, y) coordinates, mapping an
    /// output location to the input location it samples.
    fn random_theta(&self, rng: &mut impl Rng) -> [f32; 6] {
        let uniform = |rng: &mut dyn rand::RngCore, limit: f64| {
            if limit > 0.0 {
                rng.gen_range(-limit..=limit)
            } else {
                0.0
            }
        };
        let angle = uniform(rng, self.rotation_degrees).to_radians();
        // Shifts are fractions of the image; normalised coordinates span 2 units.
        let shift_x = 2.0 * uniform(rng, self.width_shift);
        let shift_y = 2.0 * uniform(rng, self.height_shift);
        let shear = uniform(rng, self.shear_degrees).to_radians();
        let (zoom_x, zoom_y) = if self.zoom > 0.0 {
            (
                rng.gen_range(1.0 - self.zoom..=1.0 + self.zoom),
                rng.gen_range(1.0 - self.zoom..=1.0 + self.zoom),
            )
        } else {
            (1.0, 1.0)
        };
        let flip = if self.horizontal_flip && rng.gen_bool(0.5) {
            -1.0
        } else {
            1.0
        };
        // Keras composes rotation · shift · shear · zoom about the image centre, acting on
        // output coordinates to find input ones; in (x, y) order that is:
        let (sin, cos) = angle.sin_cos();
        let rotation = [[cos, -sin], [sin, cos]];
        let shear_m = [[1.0, -shear.sin()], [0.0, shear.cos()]];
        let zoom_m = [[zoom_x, 0.0], [0.0, zoom_y]];
        let m = matmul(matmul(rotation, shear_m), zoom_m);
        // The flip is applied to the warped image, so it negates the output x first.
        [
            (m[0][0] * flip) as f32,
            m[0][1] as f32,
            shift_x as f32,
            (m[1][0] * flip) as f32,
            m[1][1] as f32,
            shift_y as f32,
        ]
    }

    /// Warp a batch [N, C, H, W] (any memory layout) with fresh random transforms.
    pub fn apply(&self, images: Tensor<4>, rng: &mut impl Rng) -> Tensor<4> {
        let [n, _, h, w] = images.dims();
        let device = images.device();
        let thetas: Vec<f32> = (0..n).flat_map(|_| self.random_theta(rng)).collect();
        // theta: [N, 2, 3]; base grid: [H·W, 3] rows of (x, y, 1) with align_corners=true.
        let theta = Tensor::<3>::from_data(TensorData::new(thetas, [n, 2, 3]), &device);
        let mut base = Vec::with_capacity(h * w * 3);
        for row in 0..h {
            for col in 0..w {
                base.extend([normalised(col, w), normalised(row, h), 1.0]);
            }
        }
        let base = Tensor::<2>::from_data(TensorData::new(base, [h * w, 3]), &device);
        // [1, H·W, 3] × [N, 3, 2] → [N, H·W, 2] → [N, H, W, 2]
        let grid = base
            .unsqueeze::<3>()
            .matmul(theta.swap_dims(1, 2))
            .reshape([n, h, w, 2]);
        let options = GridSampleOptions::new(InterpolateMode::Bilinear)
            .with_padding_mode(GridSamplePaddingMode::Border)
            .with_align_corners(true);
        images.grid_sample_2d(grid, options)
    }
}

fn normalised(index: usize, size: usize) -> f32 {
    if size <= 1 {
        0.0
    } else {
        2.0 * index as f32 / (size - 1) as f32 - 1.0
    }
}

fn matmul(a: [[f64; 2]; 2], b: [[f64; 2]; 2]) -> [[f64; 2]; 2] {
    let mut out = [[0.0; 2]; 2];
    for (i, row) in out.iter_mut().enumerate() {
        for (j, cell) in row.iter_mut().enumerate() {
            *cell = a[i][0] * b[0][j] + a[i][1] * b[1][j];
        }
    }
    out
}
