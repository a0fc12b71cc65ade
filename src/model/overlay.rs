//! A Grad-CAM heatmap drawn over the photo as a PNG: the grid upsampled bilinearly to the
//! photo's size, coloured with the turbo colormap (near black for nothing, through blue,
//! green and yellow, to red for most), and blended over the pixels, so a person sees at a
//! glance where the model looked.

use std::io::Cursor;

use image::{ImageFormat, RgbImage};

use super::gradcam::Heatmap;

/// How much of the colour shows over the photo.
const OPACITY: f32 = 0.45;

/// `photo` (HWC RGB, `side × side`) with `map` blended over it, PNG-encoded.
pub fn overlay_png(photo: &[u8], side: u32, map: &Heatmap) -> anyhow::Result<Vec<u8>> {
    anyhow::ensure!(
        photo.len() == (side * side * 3) as usize,
        "photo of {} bytes is not {side}×{side} RGB",
        photo.len()
    );
    let [rows, cols] = map.side;
    let mut out = RgbImage::new(side, side);
    for (x, y, pixel) in out.enumerate_pixels_mut() {
        let value = bilinear(
            &map.values,
            rows,
            cols,
            sample(y, side, rows),
            sample(x, side, cols),
        );
        let colour = colorous::TURBO.eval_continuous(f64::from(value.clamp(0.0, 1.0)));
        let at = ((y * side + x) * 3) as usize;
        for (c, tint) in [colour.r, colour.g, colour.b].into_iter().enumerate() {
            let blended = (1.0 - OPACITY) * f32::from(photo[at + c]) + OPACITY * f32::from(tint);
            pixel.0[c] = blended.round().clamp(0.0, 255.0) as u8;
        }
    }
    let mut png = Vec::new();
    out.write_to(&mut Cursor::new(&mut png), ImageFormat::Png)?;
    Ok(png)
}

/// The grid coordinate of pixel `i`'s centre, for a grid of `cells` over `side` pixels.
fn sample(i: u32, side: u32, cells: usize) -> f32 {
    ((i as f32 + 0.5) * cells as f32 / side as f32 - 0.5).clamp(0.0, (cells - 1) as f32)
}

fn bilinear(values: &[f32], rows: usize, cols: usize, r: f32, c: f32) -> f32 {
    let (r0, c0) = (r.floor() as usize, c.floor() as usize);
    let (r1, c1) = ((r0 + 1).min(rows - 1), (c0 + 1).min(cols - 1));
    let (fr, fc) = (r - r0 as f32, c - c0 as f32);
    let at = |r: usize, c: usize| values[r * cols + c];
    let top = at(r0, c0) * (1.0 - fc) + at(r0, c1) * fc;
    let bottom = at(r1, c0) * (1.0 - fc) + at(r1, c1) * fc;
    top * (1.0 - fr) + bottom * fr
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hot_corner_is_red_and_the_cold_one_dark() {
        let map = Heatmap {
            probabilities: vec![0.5, 0.5],
            class: 1,
            side: [2, 2],
            values: vec![1.0, 0.0, 0.0, 0.0],
        };
        let grey = vec![128u8; 8 * 8 * 3];
        let png = overlay_png(&grey, 8, &map).unwrap();
        let image = image::load_from_memory(&png).unwrap().to_rgb8();
        assert_eq!(image.dimensions(), (8, 8));
        let hot = image.get_pixel(0, 0).0;
        let cold = image.get_pixel(7, 7).0;
        assert!(hot[0] > hot[2], "hot corner {hot:?} should lean red");
        assert!(
            cold.iter().all(|&c| c < 128),
            "cold corner {cold:?} should darken the grey"
        );
        assert!(overlay_png(&grey, 9, &map).is_err());
    }
}
