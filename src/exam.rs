//! The exam model: tasks drawn by the curriculum's domain weights from the scenarios a backend
//! can run (deterministic for a seed), one countdown, flags for review, a weighted score against
//! the pass mark. No web types: the web UI's handlers (`web::exam`) present it.

use std::collections::BTreeMap;

use rand::SeedableRng;
use rand::distr::Distribution;
use rand::distr::weighted::WeightedIndex;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

use crate::curriculum::{Curriculum, Domain};
use crate::grade::Report;
use crate::scenario::Scenario;

/// The most tasks an exam has (the real exam has 15 to 20 in two hours).
pub const MAX_TASKS: usize = 16;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Exam {
    pub id: String,
    pub seed: u64,
    pub created_ms: i64,
    pub deadline_ms: i64,
    pub finished_ms: Option<i64>,
    pub tasks: Vec<ExamTask>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExamTask {
    /// 1-based, as shown.
    pub number: usize,
    pub scenario: String,
    pub title: String,
    pub domain: String,
    pub domain_title: String,
    pub minutes: u32,
    /// Share of the exam score, in percent (all tasks add up to 100).
    pub weight: f64,
    pub flagged: bool,
    /// The last grade of this task during the exam.
    pub score: Option<u32>,
    pub passed: bool,
    /// weight × score: what the task adds to the exam score.
    pub points: f64,
    pub checks: u32,
}

impl Exam {
    pub fn over_at(&self, now: i64) -> bool {
        self.finished_ms.is_some() || now >= self.deadline_ms
    }

    /// The weighted score in percent (ungraded tasks count as 0), rounded down.
    pub fn score(&self) -> u32 {
        let total: f64 = self.tasks.iter().map(|t| t.weight).sum();
        if total <= 0.0 {
            return 0;
        }
        let earned: f64 = self.tasks.iter().map(|t| t.weight * t.score.unwrap_or(0) as f64 / 100.0).sum();
        ((earned / total) * 100.0 + 1e-9).floor() as u32
    }

    pub fn passed(&self) -> bool {
        self.score() >= Curriculum::get().pass_mark_percent
    }
}

/// Picks scenarios: a domain by weight (among domains with scenarios left), then a scenario of
/// it, until the minutes fill the exam or `max_tasks` are chosen. Same seed, same exam.
pub fn sample<'a>(
    candidates: &[&'a Scenario],
    domains: &[Domain],
    seed: u64,
    budget_minutes: u32,
    max_tasks: usize,
) -> Vec<&'a Scenario> {
    let mut pools: Vec<(u32, Vec<&'a Scenario>)> = domains
        .iter()
        .map(|d| {
            let mut pool: Vec<&Scenario> = candidates.iter().copied().filter(|s| s.domain == d.id).collect();
            pool.sort_by(|a, b| a.id.cmp(&b.id));
            (d.weight.max(1), pool)
        })
        .collect();
    let mut rng = StdRng::seed_from_u64(seed);
    let mut chosen = Vec::new();
    let mut minutes = 0;
    while chosen.len() < max_tasks && minutes < budget_minutes {
        let open: Vec<usize> = (0..pools.len()).filter(|&i| !pools[i].1.is_empty()).collect();
        if open.is_empty() {
            break;
        }
        let Ok(pick) = WeightedIndex::new(open.iter().map(|&i| pools[i].0)) else { break };
        let pool = &mut pools[open[pick.sample(&mut rng)]].1;
        let index = rand::Rng::random_range(&mut rng, 0..pool.len());
        let scenario = pool.remove(index);
        minutes += scenario.minutes;
        chosen.push(scenario);
    }
    chosen
}

/// Each task's share: its domain's weight split among the exam's tasks of that domain,
/// normalised to 100 over the domains the exam covers.
fn weigh(tasks: &mut [ExamTask], domains: &[Domain]) {
    let mut per_domain: BTreeMap<String, usize> = BTreeMap::new();
    for task in tasks.iter() {
        *per_domain.entry(task.domain.clone()).or_default() += 1;
    }
    let weight_of = |id: &str| domains.iter().find(|d| d.id == id).map(|d| d.weight.max(1)).unwrap_or(1) as f64;
    let total: f64 = per_domain.keys().map(|d| weight_of(d)).sum();
    for task in tasks.iter_mut() {
        task.weight = weight_of(&task.domain) / per_domain[&task.domain] as f64 / total * 100.0;
    }
}

impl Exam {
    /// Draws an exam from `candidates` (the scenarios the backend can run) by the curriculum's
    /// domain weights, with the curriculum's clock from `now_ms`; `None` when there is none.
    pub fn draw(
        id: String,
        candidates: &[&Scenario],
        curriculum: &Curriculum,
        seed: u64,
        max_tasks: usize,
        now_ms: i64,
    ) -> Option<Exam> {
        let chosen =
            sample(candidates, &curriculum.domains, seed, curriculum.exam_minutes, max_tasks.clamp(1, MAX_TASKS));
        if chosen.is_empty() {
            return None;
        }
        let mut tasks: Vec<ExamTask> = chosen
            .iter()
            .enumerate()
            .map(|(index, s)| ExamTask {
                number: index + 1,
                scenario: s.id.clone(),
                title: s.title.clone(),
                domain: s.domain.clone(),
                domain_title: curriculum.domain(&s.domain).map(|d| d.title.clone()).unwrap_or_else(|| s.domain.clone()),
                minutes: s.minutes,
                weight: 0.0,
                flagged: false,
                score: None,
                passed: false,
                points: 0.0,
                checks: s.checks.len() as u32,
            })
            .collect();
        weigh(&mut tasks, &curriculum.domains);
        Some(Exam {
            id,
            seed,
            created_ms: now_ms,
            deadline_ms: now_ms + curriculum.exam_minutes as i64 * 60_000,
            finished_ms: None,
            tasks,
        })
    }

    /// Time running out finishes the exam (at its deadline); true when that happened now.
    pub fn expire(&mut self, now_ms: i64) -> bool {
        if self.finished_ms.is_none() && now_ms >= self.deadline_ms {
            self.finished_ms = Some(self.deadline_ms);
            return true;
        }
        false
    }

    /// The index of task `number` (1-based, as shown).
    pub fn task_index(&self, number: usize) -> Option<usize> {
        (number >= 1 && number <= self.tasks.len()).then(|| number - 1)
    }

    /// Keeps a task's last grade.
    pub fn record_grade(&mut self, index: usize, report: &Report) {
        if let Some(task) = self.tasks.get_mut(index) {
            task.score = Some(report.score);
            task.passed = report.passed;
            task.points = task.weight * report.score as f64 / 100.0;
        }
    }

    pub fn flagged(&self) -> usize {
        self.tasks.iter().filter(|t| t.flagged).count()
    }

    pub fn graded(&self) -> usize {
        self.tasks.iter().filter(|t| t.score.is_some()).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario(id: &str, domain: &str, minutes: u32) -> Scenario {
        serde_saphyr::from_str(&format!(
            "id: {id}\ntitle: T\ndomain: {domain}\ncompetencies: []\ndifficulty: easy\nminutes: {minutes}\ntask: x\nchecks: []\nsolutions: []\n"
        ))
        .unwrap()
    }

    #[test]
    fn sampling_is_deterministic_and_fills_the_time() {
        let domains = &Curriculum::get().domains;
        let all: Vec<Scenario> =
            (0..30).map(|i| scenario(&format!("s{i:02}"), &domains[i % domains.len()].id, 10)).collect();
        let refs: Vec<&Scenario> = all.iter().collect();
        let a: Vec<&str> = sample(&refs, domains, 7, 120, 16).iter().map(|s| s.id.as_str()).collect();
        let b: Vec<&str> = sample(&refs, domains, 7, 120, 16).iter().map(|s| s.id.as_str()).collect();
        assert_eq!(a, b);
        assert_eq!(a.len(), 12, "12 tasks of 10 minutes fill 120 minutes");
        let unique: std::collections::BTreeSet<_> = a.iter().collect();
        assert_eq!(unique.len(), a.len(), "no scenario twice");
        let few = sample(&refs[..3], domains, 7, 120, 16);
        assert_eq!(few.len(), 3, "runs out of scenarios");
    }

    #[test]
    fn weights_follow_the_domains_and_add_up() {
        let domains = &Curriculum::get().domains;
        let mut tasks: Vec<ExamTask> = [&domains[0], &domains[0], &domains[1]]
            .iter()
            .enumerate()
            .map(|(i, d)| ExamTask {
                number: i + 1,
                scenario: format!("s{i}"),
                title: String::new(),
                domain: d.id.clone(),
                domain_title: String::new(),
                minutes: 10,
                weight: 0.0,
                flagged: false,
                score: None,
                passed: false,
                points: 0.0,
                checks: 1,
            })
            .collect();
        weigh(&mut tasks, domains);
        let total: f64 = tasks.iter().map(|t| t.weight).sum();
        assert!((total - 100.0).abs() < 1e-6);
        let (w0, w1) = (domains[0].weight as f64, domains[1].weight as f64);
        assert!((tasks[0].weight - w0 / 2.0 / (w0 + w1) * 100.0).abs() < 1e-6);
        tasks[2].score = Some(100);
        let exam = Exam { id: "e".into(), seed: 1, created_ms: 0, deadline_ms: i64::MAX, finished_ms: None, tasks };
        assert_eq!(exam.score(), (w1 / (w0 + w1) * 100.0).floor() as u32);
    }

    #[test]
    fn a_drawn_exam_runs_on_the_curriculum_clock_keeps_grades_and_expires_at_its_deadline() {
        let curriculum = Curriculum::get();
        let all: Vec<Scenario> = (0..4).map(|i| scenario(&format!("s{i}"), &curriculum.domains[i].id, 10)).collect();
        let refs: Vec<&Scenario> = all.iter().collect();
        assert!(Exam::draw("e".into(), &[], curriculum, 7, 16, 0).is_none(), "nothing to examine");
        let mut exam = Exam::draw("e".into(), &refs, curriculum, 7, 2, 1_000).unwrap();
        assert_eq!(exam.tasks.len(), 2, "max_tasks caps the draw");
        assert_eq!(exam.deadline_ms, 1_000 + curriculum.exam_minutes as i64 * 60_000);
        assert_eq!(exam.task_index(0), None);
        assert_eq!(exam.task_index(2), Some(1));
        assert_eq!(exam.task_index(3), None);
        let report = Report {
            scenario: exam.tasks[1].scenario.clone(),
            title: String::new(),
            backend: "local".into(),
            verdicts: vec![],
            score: 50,
            passed: false,
            millis: 1,
        };
        exam.record_grade(1, &report);
        assert_eq!((exam.graded(), exam.tasks[1].score), (1, Some(50)));
        assert!((exam.tasks[1].points - exam.tasks[1].weight / 2.0).abs() < 1e-9);
        assert!(!exam.expire(exam.deadline_ms - 1) && !exam.over_at(exam.deadline_ms - 1));
        assert!(exam.expire(exam.deadline_ms + 5));
        assert_eq!(exam.finished_ms, Some(exam.deadline_ms), "finished at the deadline, not when looked at");
        assert!(!exam.expire(exam.deadline_ms + 10), "only once");
    }
}
