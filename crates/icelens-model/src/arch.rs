//! The U-Net's shape, read from the names and shapes of a state_dict (spec §d.4, §d.7).
//!
//! A checkpoint is used whole or refused: every float tensor and integer buffer must be one
//! the inferred architecture uses, with the shape it expects. A state_dict with keys the
//! network would ignore is a different network, and running it as this one would draw a
//! silent wrong picture.

use serde::Serialize;

use icelens_core::checkpoint::StateDict;
use icelens_core::Chart;

use crate::error::ModelError;

/// How the SIC head answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SicHead {
    /// 12 logits: classes 0…10 and the never-targeted mask channel.
    Classification,
    /// One value: the class index as a float (the fork's `loss_sic = 'regression'`).
    Regression,
}

/// Which U-Net: the challenge's, or the team's attention U-Net (spec §d.7) with a gate on
/// the skip connection of every expanding block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    #[default]
    Plain,
    Attention,
}

/// Everything needed to build the network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Architecture {
    /// `unet_conv_filters`: one entry per level.
    pub filters: Vec<usize>,
    pub in_channels: usize,
    /// Outputs of the SIC, SOD and FLOE heads.
    pub head_outputs: [usize; 3],
    pub sic: SicHead,
    pub kind: Kind,
}

/// One expanding block's channels: the upsampled deep map's, the skip's (also the block's
/// output) and, for an attention U-Net, the gate's inner channels (`int(out / 2)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpandShape {
    pub deep: usize,
    pub skip: usize,
    pub gate: usize,
}

impl Architecture {
    pub fn levels(&self) -> usize {
        self.filters.len()
    }

    /// Parses filters per level as users write them (`16,32,32,32`). At most 8 levels of at
    /// most 1024 filters: the challenge's largest network has 8 levels, and more would ask a
    /// browser tab for more memory than it has.
    pub fn parse_filters(s: &str) -> Result<Vec<usize>, ModelError> {
        let f: Vec<usize> = s
            .split(',')
            .map(|x| x.trim().parse::<usize>())
            .collect::<Result<_, _>>()
            .map_err(|_| {
                ModelError::Settings(format!(
                    "filters \"{s}\": expected numbers like 16,32,32,32"
                ))
            })?;
        if f.is_empty() || f.len() > 8 || f.iter().any(|&n| n == 0 || n > 1024) {
            return Err(ModelError::Settings(format!(
                "filters \"{s}\": 1 to 8 levels of 1 to 1024 filters"
            )));
        }
        Ok(f)
    }

    /// The architecture of a freshly built network with the challenge's 24 inputs and heads.
    pub fn fresh(filters: &[usize], sic: SicHead, kind: Kind) -> Result<Architecture, ModelError> {
        if filters.is_empty() || filters.contains(&0) {
            return Err(ModelError::Settings(format!(
                "filters {filters:?}: need at least one level, none empty"
            )));
        }
        if kind == Kind::Attention && filters.iter().any(|&f| f < 2) {
            return Err(ModelError::Settings(format!(
                "filters {filters:?}: an attention gate has half a level's filters, so each \
                 level needs at least 2"
            )));
        }
        let n_sic = match sic {
            SicHead::Classification => Chart::SIC.n_outputs(),
            SicHead::Regression => 1,
        };
        Ok(Architecture {
            filters: filters.to_vec(),
            in_channels: icelens_core::input::N_INPUT,
            head_outputs: [n_sic, Chart::SOD.n_outputs(), Chart::FLOE.n_outputs()],
            sic,
            kind,
        })
    }

    /// A short name for model cards and messages.
    pub fn name(&self) -> &'static str {
        match self.kind {
            Kind::Plain => "U-Net",
            Kind::Attention => "attention U-Net",
        }
    }

    /// The expanding blocks, deepest first (spec §d.2 step 4, §d.7).
    pub fn expand_shapes(&self) -> Vec<ExpandShape> {
        let f = &self.filters;
        let l = f.len();
        let mut v = vec![(f[l - 1], f[l - 1])];
        for k in 1..l {
            v.push((f[l - k], f[l - k - 1]));
        }
        v.into_iter()
            .map(|(deep, skip)| ExpandShape {
                deep,
                skip,
                gate: skip / 2,
            })
            .collect()
    }

    /// PyTorch names of every BatchNorm, each of which has a `num_batches_tracked` buffer.
    pub fn batch_norms(&self) -> Vec<String> {
        self.expected()
            .into_iter()
            .filter_map(|(n, _)| n.strip_suffix(".running_var").map(str::to_string))
            .collect()
    }

    /// Every tensor the network needs, with its shape, in PyTorch's registration order (the
    /// order of its state_dict, less the `num_batches_tracked` buffers).
    pub fn expected(&self) -> Vec<(String, Vec<usize>)> {
        let f = &self.filters;
        let l = f.len();
        let mut out = Vec::new();
        let double = |out: &mut Vec<(String, Vec<usize>)>, p: String, cin: usize, cout: usize| {
            for (conv, bn, cin) in [("0", "1", cin), ("3", "4", cout)] {
                out.push((format!("{p}.{conv}.weight"), vec![cout, cin, 3, 3]));
                for t in ["weight", "bias", "running_mean", "running_var"] {
                    out.push((format!("{p}.{bn}.{t}"), vec![cout]));
                }
            }
        };
        double(
            &mut out,
            "input_block.double_conv".into(),
            self.in_channels,
            f[0],
        );
        for i in 1..l {
            double(
                &mut out,
                format!("contract_blocks.{}.double_conv.double_conv", i - 1),
                f[i - 1],
                f[i],
            );
        }
        double(
            &mut out,
            "bridge.double_conv.double_conv".into(),
            f[l - 1],
            f[l - 1],
        );
        for (k, e) in self.expand_shapes().into_iter().enumerate() {
            if self.kind == Kind::Attention {
                let p = format!("expand_blocks.{k}.attention");
                for (part, cin, cout) in [
                    ("W_gate", e.deep, e.gate),
                    ("W_x", e.skip, e.gate),
                    ("psi", e.gate, 1),
                ] {
                    out.push((format!("{p}.{part}.0.weight"), vec![cout, cin, 3, 3]));
                    for t in ["weight", "bias", "running_mean", "running_var"] {
                        out.push((format!("{p}.{part}.1.{t}"), vec![cout]));
                    }
                }
            }
            double(
                &mut out,
                format!("expand_blocks.{k}.double_conv.double_conv"),
                e.deep + e.skip,
                e.skip,
            );
        }
        for (chart, n) in Chart::ALL.iter().zip(self.head_outputs) {
            let p = head_prefix(*chart);
            out.push((format!("{p}.weight"), vec![n, f[0], 1, 1]));
            out.push((format!("{p}.bias"), vec![n]));
        }
        out
    }

    /// (input channels, output channels) of each expanding block's DoubleConv.
    pub fn expand_channels(&self) -> Vec<(usize, usize)> {
        self.expand_shapes()
            .into_iter()
            .map(|e| (e.deep + e.skip, e.skip))
            .collect()
    }

    /// Trainable parameters (convolutions, BatchNorm affine, heads), as PyTorch counts them.
    pub fn parameter_count(&self) -> usize {
        self.expected()
            .iter()
            .filter(|(n, _)| !n.ends_with("running_mean") && !n.ends_with("running_var"))
            .map(|(_, s)| s.iter().product::<usize>())
            .sum()
    }

    /// Reads the architecture from a state_dict and checks that every tensor is there with the
    /// right shape; the error lists what is missing or wrong.
    pub fn infer(sd: &StateDict) -> Result<Architecture, ModelError> {
        let shape = |k: &str| sd.tensors.get(k).map(|t| t.shape.clone());
        let first = shape("input_block.double_conv.0.weight").ok_or_else(|| {
            ModelError::NotAUNet(
                "has no `input_block.double_conv.0.weight`: not a challenge U-Net state_dict"
                    .into(),
            )
        })?;
        if first.len() != 4 {
            return Err(ModelError::NotAUNet(
                "`input_block.double_conv.0.weight` is not a 4-D convolution weight".into(),
            ));
        }
        let mut filters = vec![first[0]];
        while let Some(s) = shape(&format!(
            "contract_blocks.{}.double_conv.double_conv.0.weight",
            filters.len() - 1
        )) {
            filters.push(*s.first().unwrap_or(&0));
            if filters.len() > 12 {
                return Err(ModelError::NotAUNet("has more than 12 levels".into()));
            }
        }
        let head = |c: Chart| {
            shape(&format!("{}.weight", head_prefix(c)))
                .and_then(|s| s.first().copied())
                .ok_or_else(|| {
                    ModelError::NotAUNet(format!("has no {} head (`{}.weight`)", c, head_prefix(c)))
                })
        };
        let head_outputs = [head(Chart::SIC)?, head(Chart::SOD)?, head(Chart::FLOE)?];
        let sic = if head_outputs[0] == 1 {
            SicHead::Regression
        } else {
            SicHead::Classification
        };
        let kind = if sd.tensors.keys().any(|k| k.contains(".attention.")) {
            Kind::Attention
        } else {
            Kind::Plain
        };
        let arch = Architecture {
            filters,
            in_channels: first[1],
            head_outputs,
            sic,
            kind,
        };
        if arch.in_channels != icelens_core::input::N_INPUT {
            return Err(ModelError::NotAUNet(format!(
                "takes {} input channels; the challenge's scenes give 24",
                arch.in_channels
            )));
        }
        let mut problems = Vec::new();
        for (name, want) in arch.expected() {
            match shape(&name) {
                None => problems.push(format!("`{name}` is missing")),
                Some(got) if got != want => {
                    problems.push(format!("`{name}` has shape {got:?}, expected {want:?}"))
                }
                _ => {}
            }
        }
        // Used whole or refused: a tensor the network would not use means another network.
        let expected: std::collections::BTreeSet<String> =
            arch.expected().into_iter().map(|(n, _)| n).collect();
        let buffers: std::collections::BTreeSet<String> = arch
            .batch_norms()
            .into_iter()
            .map(|b| format!("{b}.num_batches_tracked"))
            .collect();
        let unused: Vec<&str> = sd
            .tensors
            .keys()
            .filter(|k| !expected.contains(*k))
            .chain(sd.integer_buffers.iter().filter(|k| !buffers.contains(*k)))
            .map(String::as_str)
            .collect();
        if !unused.is_empty() {
            let n = unused.len();
            let shown: Vec<String> = unused.iter().take(6).map(|k| format!("`{k}`")).collect();
            problems.push(format!(
                "{n} tensor{} not used by a{} {} with these filters: {}{}",
                if n == 1 { " is" } else { "s are" },
                if arch.kind == Kind::Attention {
                    "n"
                } else {
                    ""
                },
                arch.name(),
                shown.join(", "),
                if n > 6 { ", ..." } else { "" }
            ));
        }
        for (i, chart) in Chart::ALL.iter().enumerate().skip(1) {
            if arch.head_outputs[i] < chart.n_classes() {
                problems.push(format!(
                    "the {chart} head has {} outputs, fewer than its {} classes",
                    arch.head_outputs[i],
                    chart.n_classes()
                ));
            }
        }
        if arch.sic == SicHead::Classification && arch.head_outputs[0] < Chart::SIC.n_classes() {
            problems.push(format!(
                "the SIC head has {} outputs: neither 1 (regression) nor at least 11 classes",
                arch.head_outputs[0]
            ));
        }
        if problems.is_empty() {
            Ok(arch)
        } else {
            Err(ModelError::DoesNotFit {
                network: arch.name().into(),
                filters: arch.filters,
                problems,
            })
        }
    }
}

pub fn head_prefix(chart: Chart) -> String {
    format!("{}_feature_map.feature_out", chart.name().to_lowercase())
}
