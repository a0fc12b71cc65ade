//! The VGG16 convolutional base as a table of named layers.
//!
//! Layer names are Keras's (`block1_conv1` … `block5_pool`) so that "freeze everything up to
//! `block4_pool`" or "unfreeze from `block5_conv1`" can be said by name; each conv also
//! knows its torchvision index (`features.N`) because that is how weight files name it.

/// What one layer of the base does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerKind {
    /// 3×3 convolution, padding 1, followed by ReLU. `conv` indexes `Vgg16::convs`.
    Conv {
        conv: usize,
        torch_index: usize,
        in_channels: usize,
        out_channels: usize,
    },
    /// 2×2 max-pool, stride 2 (floor).
    Pool,
}

/// One named layer of the base.
#[derive(Debug, Clone, Copy)]
pub struct LayerSpec {
    pub name: &'static str,
    pub kind: LayerKind,
}

const fn conv(
    name: &'static str,
    conv: usize,
    torch_index: usize,
    in_channels: usize,
    out_channels: usize,
) -> LayerSpec {
    LayerSpec {
        name,
        kind: LayerKind::Conv {
            conv,
            torch_index,
            in_channels,
            out_channels,
        },
    }
}

const fn pool(name: &'static str) -> LayerSpec {
    LayerSpec {
        name,
        kind: LayerKind::Pool,
    }
}

/// The 18 layers of VGG16 without its top, in order.
pub const LAYERS: [LayerSpec; 18] = [
    conv("block1_conv1", 0, 0, 3, 64),
    conv("block1_conv2", 1, 2, 64, 64),
    pool("block1_pool"),
    conv("block2_conv1", 2, 5, 64, 128),
    conv("block2_conv2", 3, 7, 128, 128),
    pool("block2_pool"),
    conv("block3_conv1", 4, 10, 128, 256),
    conv("block3_conv2", 5, 12, 256, 256),
    conv("block3_conv3", 6, 14, 256, 256),
    pool("block3_pool"),
    conv("block4_conv1", 7, 17, 256, 512),
    conv("block4_conv2", 8, 19, 512, 512),
    conv("block4_conv3", 9, 21, 512, 512),
    pool("block4_pool"),
    conv("block5_conv1", 10, 24, 512, 512),
    conv("block5_conv2", 11, 26, 512, 512),
    conv("block5_conv3", 12, 28, 512, 512),
    pool("block5_pool"),
];

/// Number of conv layers (and so of weight/bias pairs) in the base.
pub const NUM_CONVS: usize = 13;

/// Channels of the base's output.
pub const OUT_CHANNELS: usize = 512;

/// Position of a layer in [`LAYERS`] by its Keras name.
pub fn layer_index(name: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.name == name)
}

/// Spatial size after the base for a square input: five floor-halvings (150 → 4).
pub fn output_side(input_side: usize) -> usize {
    (0..5).fold(input_side, |side, _| side / 2)
}

/// One conv layer as weight files and checks need it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvSpec {
    /// Keras's layer name (`block1_conv1`).
    pub name: &'static str,
    /// torchvision's index: the layer is `features.{torch_index}`.
    pub torch_index: usize,
    pub in_channels: usize,
    pub out_channels: usize,
}

/// Every conv layer, in network order.
pub fn convs() -> impl Iterator<Item = ConvSpec> {
    LAYERS.iter().filter_map(|layer| match layer.kind {
        LayerKind::Conv {
            torch_index,
            in_channels,
            out_channels,
            ..
        } => Some(ConvSpec {
            name: layer.name,
            torch_index,
            in_channels,
            out_channels,
        }),
        LayerKind::Pool => None,
    })
}

/// Position in [`LAYERS`] of a conv layer named `name`; None for pools and unknown names.
pub fn conv_layer_index(name: &str) -> Option<usize> {
    layer_index(name).filter(|&i| matches!(LAYERS[i].kind, LayerKind::Conv { .. }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameter_count_is_vgg16s() {
        let params: usize = convs()
            .map(|c| c.out_channels * c.in_channels * 9 + c.out_channels)
            .sum();
        assert_eq!(params, 14_714_688);
        let torch: Vec<usize> = convs().map(|c| c.torch_index).collect();
        assert_eq!(torch, [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]);
    }

    #[test]
    fn names_resolve_and_sizes_follow_keras() {
        assert_eq!(layer_index("block4_pool"), Some(13));
        assert_eq!(layer_index("block5_conv1"), Some(14));
        assert_eq!(layer_index("block6_conv1"), None);
        assert_eq!(conv_layer_index("block5_conv1"), Some(14));
        assert_eq!(conv_layer_index("block4_pool"), None);
        assert_eq!(output_side(150), 4);
        assert_eq!(output_side(224), 7);
    }
}
