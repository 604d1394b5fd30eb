//! Round-robin across users: each user's jobs run in the order they asked, and users take
//! turns, so one person's ten requests never push everyone else's first request back ten places.

use std::collections::{HashMap, VecDeque};

use loopsmith_protocol::{JobId, UserKey};

#[derive(Debug, Default)]
pub struct FairQueue {
    /// Users with waiting jobs, in turn order.
    turns: VecDeque<UserKey>,
    waiting: HashMap<UserKey, VecDeque<JobId>>,
}

impl FairQueue {
    pub fn push(&mut self, user: UserKey, job: JobId) {
        let queue = self.waiting.entry(user.clone()).or_default();
        if queue.is_empty() {
            self.turns.push_back(user);
        }
        queue.push_back(job);
    }

    /// The next job to run: the first waiting job of the user whose turn it is.
    pub fn pop(&mut self) -> Option<(UserKey, JobId)> {
        let user = self.turns.pop_front()?;
        let queue = self.waiting.get_mut(&user)?;
        let job = queue.pop_front()?;
        if queue.is_empty() {
            self.waiting.remove(&user);
        } else {
            self.turns.push_back(user.clone());
        }
        Some((user, job))
    }

    /// Takes a waiting job out (it was cancelled). Returns whether it was waiting.
    pub fn remove(&mut self, user: &UserKey, job: JobId) -> bool {
        let Some(queue) = self.waiting.get_mut(user) else {
            return false;
        };
        let Some(index) = queue.iter().position(|j| *j == job) else {
            return false;
        };
        queue.remove(index);
        if queue.is_empty() {
            self.waiting.remove(user);
            self.turns.retain(|u| u != user);
        }
        true
    }

    pub fn len(&self) -> usize {
        self.waiting.values().map(VecDeque::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.turns.is_empty()
    }

    pub fn waiting_for(&self, user: &UserKey) -> usize {
        self.waiting.get(user).map_or(0, VecDeque::len)
    }

    /// Every waiting job with its 1-based place in the order they will run, up to `limit`.
    pub fn positions(&self, limit: usize) -> Vec<(JobId, UserKey, u32)> {
        let mut out = Vec::new();
        let mut round = 0;
        loop {
            let mut any = false;
            for user in &self.turns {
                if let Some(job) = self.waiting.get(user).and_then(|q| q.get(round)) {
                    any = true;
                    if out.len() == limit {
                        return out;
                    }
                    out.push((*job, user.clone(), out.len() as u32 + 1));
                }
            }
            if !any {
                return out;
            }
            round += 1;
        }
    }

    pub fn position(&self, job: JobId) -> Option<u32> {
        self.positions(usize::MAX)
            .into_iter()
            .find(|(j, _, _)| *j == job)
            .map(|(_, _, p)| p)
    }
}

#[cfg(test)]
mod tests {
    use loopsmith_protocol::Platform;

    use super::*;

    fn user(n: &str) -> UserKey {
        UserKey::new(Platform::Telegram, n)
    }

    #[test]
    fn three_users_with_ten_jobs_each_interleave() {
        let mut q = FairQueue::default();
        let mut id = 0;
        for name in ["a", "b", "c"] {
            for _ in 0..10 {
                id += 1;
                q.push(user(name), JobId(id));
            }
        }
        assert_eq!(q.len(), 30);
        let order: Vec<String> = std::iter::from_fn(|| q.pop()).map(|(u, _)| u.id).collect();
        assert_eq!(order.concat(), "abc".repeat(10));
        assert!(q.is_empty());
    }

    #[test]
    fn positions_predict_the_pop_order() {
        let mut q = FairQueue::default();
        q.push(user("a"), JobId(1));
        q.push(user("a"), JobId(2));
        q.push(user("a"), JobId(3));
        q.push(user("b"), JobId(4));
        q.push(user("c"), JobId(5));
        q.push(user("b"), JobId(6));
        let predicted: Vec<JobId> = q
            .positions(usize::MAX)
            .into_iter()
            .map(|(j, _, _)| j)
            .collect();
        assert_eq!(q.position(JobId(4)), Some(2));
        assert_eq!(q.position(JobId(3)), Some(6));
        assert_eq!(q.positions(2).len(), 2);
        let popped: Vec<JobId> = std::iter::from_fn(|| q.pop()).map(|(_, j)| j).collect();
        assert_eq!(predicted, popped);
        assert_eq!(popped, [1, 4, 5, 2, 6, 3].map(JobId));
    }

    #[test]
    fn removing_a_users_last_job_drops_their_turn() {
        let mut q = FairQueue::default();
        q.push(user("a"), JobId(1));
        q.push(user("b"), JobId(2));
        assert!(q.remove(&user("a"), JobId(1)));
        assert!(!q.remove(&user("a"), JobId(1)), "already gone");
        assert_eq!(q.waiting_for(&user("a")), 0);
        assert_eq!(q.pop(), Some((user("b"), JobId(2))));
        assert_eq!(q.pop(), None);
    }
}
