//! The CKS v1.34 curriculum: domains, weights and competency ids, embedded from
//! `curriculum/cks-v1.34.yaml` (a copy of the shared curriculum file).

use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

const SOURCE: &str = include_str!("../curriculum/cks-v1.34.yaml");

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Curriculum {
    pub version: String,
    pub kubernetes: String,
    pub pass_mark_percent: u32,
    pub exam_minutes: u32,
    pub domains: Vec<Domain>,
    #[serde(default)]
    pub legacy: Vec<Competency>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Domain {
    pub id: String,
    pub title: String,
    pub weight: u32,
    pub competencies: Vec<Competency>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Competency {
    pub id: String,
    pub title: String,
}

impl Curriculum {
    pub fn get() -> &'static Curriculum {
        static CURRICULUM: OnceLock<Curriculum> = OnceLock::new();
        CURRICULUM.get_or_init(|| serde_saphyr::from_str(SOURCE).expect("embedded curriculum parses"))
    }

    pub fn domain(&self, id: &str) -> Option<&Domain> {
        self.domains.iter().find(|d| d.id == id)
    }

    /// A competency id of any domain, or a legacy one.
    pub fn knows_competency(&self, id: &str) -> bool {
        self.domains.iter().flat_map(|d| &d.competencies).chain(&self.legacy).any(|c| c.id == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_add_up_to_one_hundred() {
        let total: u32 = Curriculum::get().domains.iter().map(|d| d.weight).sum();
        assert_eq!(total, 100);
        assert!(Curriculum::get().knows_competency("secrets"));
        assert!(!Curriculum::get().knows_competency("no-such-thing"));
    }
}
