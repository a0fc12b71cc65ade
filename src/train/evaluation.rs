//! What an evaluation reports beyond loss and accuracy, so a user can act on it: the
//! confusion matrix (rows the true class, columns the predicted one), per-class precision,
//! recall and F1, and the photos the model got wrong most confidently (a bounded list).

use serde_json::{json, Value};

use super::fit::{predicted_class, Meter};

/// How many confidently wrong photos a report names.
pub const MOST_WRONG: usize = 12;

#[derive(Debug, Clone)]
pub struct Evaluation {
    classes: Vec<String>,
    units: usize,
    meter: Meter,
    /// `confusion[true][predicted]`.
    confusion: Vec<Vec<u64>>,
    /// (probability of the wrong class, file, true, predicted), most confident first.
    wrong: Vec<(f32, String, usize, usize)>,
}

impl Evaluation {
    /// An empty evaluation of a head with `units` outputs over `classes`.
    pub fn new(classes: &[String], units: usize) -> Self {
        Self {
            classes: classes.to_vec(),
            units,
            meter: Meter::new(units),
            confusion: vec![vec![0; classes.len()]; classes.len()],
            wrong: Vec::new(),
        }
    }

    /// Add a batch: [N, units] logits row-major, labels, and the files (when known).
    pub fn add(&mut self, logits: &[f32], labels: &[usize], files: Option<&[String]>) {
        self.meter.add_logits(logits, labels);
        for (i, (row, &label)) in logits.chunks_exact(self.units).zip(labels).enumerate() {
            let predicted = predicted_class(row);
            if let Some(cell) = self
                .confusion
                .get_mut(label)
                .and_then(|r| r.get_mut(predicted))
            {
                *cell += 1;
            }
            if predicted == label {
                continue;
            }
            let Some(file) = files.and_then(|f| f.get(i)) else {
                continue;
            };
            let probability = class_probabilities(row)[predicted];
            self.wrong
                .push((probability, file.clone(), label, predicted));
            self.wrong.sort_by(|a, b| b.0.total_cmp(&a.0));
            self.wrong.truncate(MOST_WRONG);
        }
    }

    pub fn meter(&self) -> &Meter {
        &self.meter
    }

    /// Precision, recall and F1 of class `c` (0 where undefined), and its support.
    fn per_class(&self, c: usize) -> (f64, f64, f64, u64) {
        let tp = self.confusion[c][c] as f64;
        let predicted: u64 = self.confusion.iter().map(|row| row[c]).sum();
        let support: u64 = self.confusion[c].iter().sum();
        let ratio = |a: f64, b: u64| if b == 0 { 0.0 } else { a / b as f64 };
        let (precision, recall) = (ratio(tp, predicted), ratio(tp, support));
        let f1 = if precision + recall == 0.0 {
            0.0
        } else {
            2.0 * precision * recall / (precision + recall)
        };
        (precision, recall, f1, support)
    }

    /// Loss, accuracy and count (as before), plus the confusion matrix, per-class figures
    /// and the most confidently wrong photos.
    pub fn json(&self) -> Value {
        let mut out = self.meter.json();
        let per_class: Vec<Value> = (0..self.classes.len())
            .map(|c| {
                let (precision, recall, f1, support) = self.per_class(c);
                json!({"class": self.classes[c], "precision": precision, "recall": recall,
                       "f1": f1, "support": support})
            })
            .collect();
        let wrong: Vec<Value> = self
            .wrong
            .iter()
            .map(|(probability, file, label, predicted)| {
                json!({"file": file, "true": self.classes[*label],
                       "predicted": self.classes[*predicted], "probability": probability})
            })
            .collect();
        out["classes"] = json!(self.classes);
        out["confusion"] = json!(self.confusion);
        out["per_class"] = Value::Array(per_class);
        out["most_confident_wrong"] = Value::Array(wrong);
        out
    }
}

/// Class probabilities of one row of logits: `[1 − p, p]` for one sigmoid unit, softmax
/// for more.
pub fn class_probabilities(row: &[f32]) -> Vec<f32> {
    match row {
        [z] => {
            let p = 1.0 / (1.0 + (-z).exp());
            vec![1.0 - p, p]
        }
        _ => {
            let max = row.iter().fold(f32::NEG_INFINITY, |m, &z| m.max(z));
            let exp: Vec<f32> = row.iter().map(|&z| (z - max).exp()).collect();
            let sum: f32 = exp.iter().sum();
            exp.iter().map(|e| e / sum).collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confusion_per_class_and_the_confident_mistakes() {
        let classes: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
        let mut eval = Evaluation::new(&classes, 3);
        // True a,a,b,c predicted a,b,b,a (the last two wrong with different confidence).
        let logits = [
            3.0, 0.0, 0.0, // a → a
            0.0, 1.0, 0.0, // a → b (mildly)
            0.0, 2.0, 0.0, // b → b
            4.0, 0.0, 0.0, // c → a (confidently)
        ];
        let files: Vec<String> = ["1", "2", "3", "4"].map(String::from).to_vec();
        eval.add(&logits, &[0, 0, 1, 2], Some(&files));
        let out = eval.json();
        assert_eq!(out["confusion"], json!([[1, 1, 0], [0, 1, 0], [1, 0, 0]]));
        let total: u64 = eval.confusion.iter().flatten().sum();
        assert_eq!(total, 4);
        assert_eq!(out["acc"], 0.5);
        // a: precision 1/2 (a predicted twice, right once), recall 1/2.
        assert_eq!(out["per_class"][0]["precision"], 0.5);
        assert_eq!(out["per_class"][0]["recall"], 0.5);
        assert_eq!(out["per_class"][1]["precision"], 0.5);
        assert_eq!(out["per_class"][1]["recall"], 1.0);
        assert_eq!(out["per_class"][2]["f1"], 0.0);
        let wrong = out["most_confident_wrong"].as_array().unwrap();
        assert_eq!(wrong.len(), 2);
        assert_eq!(
            (wrong[0]["file"].as_str(), wrong[0]["true"].as_str()),
            (Some("4"), Some("c"))
        );
        assert!(wrong[0]["probability"].as_f64() > wrong[1]["probability"].as_f64());
    }

    #[test]
    fn probabilities_sum_to_one_for_both_head_shapes() {
        let binary = class_probabilities(&[0.0]);
        assert_eq!(binary, vec![0.5, 0.5]);
        let many = class_probabilities(&[1.0, 2.0, 3.0]);
        assert!((many.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!(many[2] > many[1] && many[1] > many[0]);
    }
}
