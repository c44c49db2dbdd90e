//! The Category model: the whole tree is one small cache entry (a few
//! thousand rows at most), so a breadcrumb or a department's leaves cost
//! one cache read.
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::db::{DbError, Handle};
use crate::layer::DataLayer;
use crate::part::{self, Fresh, Freshness, Part};

pub type CategoryId = i32;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Category {
    pub id: CategoryId,
    /// 0 for a top-level category (a department).
    pub parent_id: CategoryId,
    pub name: String,
    pub slug: String,
    pub updated: i64,
}

impl Part for Category {
    const KIND: &'static str = "category";
    const FORMAT: u16 = 1;
    const TTL: Duration = Duration::from_secs(300);
    type Id = CategoryId;

    fn fetch(db: &mut Handle<'_>, id: &CategoryId) -> Result<Option<Category>, DbError> {
        let row = db.query_opt("SELECT id, parent_id, name, slug, extract(epoch FROM updated_at)::bigint FROM categories WHERE id = $1", &[id])?;
        Ok(row.map(|r| Category { id: r.get(0), parent_id: r.get(1), name: r.get(2), slug: r.get(3), updated: r.get(4) }))
    }

    fn modified(&self) -> i64 {
        self.updated
    }
}

/// Most levels a breadcrumb climbs (the catalog has two; bad data with a
/// cycle must not loop).
const MAX_DEPTH: usize = 16;

impl Category {
    /// From the department down to `id`, one small cache entry per level
    /// (a product page needs this, not the whole tree), with the freshness
    /// of them all; empty for an unknown category.
    pub fn breadcrumb(data: &DataLayer, id: CategoryId) -> Result<(Vec<Category>, Option<Freshness>), DbError> {
        let mut trail: Vec<Category> = Vec::new();
        let mut freshness: Option<Freshness> = None;
        let mut next = id;
        while next != 0 && trail.len() < MAX_DEPTH && !trail.iter().any(|c| c.id == next) {
            let Some(level) = part::load::<Category>(data, &next)? else { break };
            freshness = Some(freshness.map_or(Freshness::of(&level), |f| f.and(Freshness::of(&level))));
            next = level.value.parent_id;
            trail.push(level.value);
        }
        trail.reverse();
        Ok((trail, freshness))
    }
}

/// Every category, by id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CategoryTree {
    /// Sorted by id.
    pub categories: Vec<Category>,
}

impl Part for CategoryTree {
    const KIND: &'static str = "categories";
    const FORMAT: u16 = 1;
    const TTL: Duration = Duration::from_secs(300);
    type Id = str;

    fn cache_key(_: &str) -> String {
        Self::KIND.to_string()
    }

    fn fetch(db: &mut Handle<'_>, _: &str) -> Result<Option<CategoryTree>, DbError> {
        let rows = db.query("SELECT id, parent_id, name, slug, extract(epoch FROM updated_at)::bigint FROM categories ORDER BY id", &[])?;
        let categories = rows.iter().map(|r| Category { id: r.get(0), parent_id: r.get(1), name: r.get(2), slug: r.get(3), updated: r.get(4) }).collect();
        Ok(Some(CategoryTree { categories }))
    }

    fn modified(&self) -> i64 {
        self.categories.iter().map(|c| c.updated).max().unwrap_or(0)
    }
}

impl CategoryTree {
    pub fn load(data: &DataLayer) -> Result<Fresh<CategoryTree>, DbError> {
        Ok(part::load::<CategoryTree>(data, "")?.expect("the tree always exists"))
    }

    pub fn get(&self, id: CategoryId) -> Option<&Category> {
        self.categories.binary_search_by_key(&id, |c| c.id).ok().map(|i| &self.categories[i])
    }

    pub fn top_level(&self) -> impl Iterator<Item = &Category> {
        self.categories.iter().filter(|c| c.parent_id == 0)
    }

    pub fn children(&self, id: CategoryId) -> impl Iterator<Item = &Category> {
        self.categories.iter().filter(move |c| c.parent_id == id)
    }

    /// From the department down to `id`.
    pub fn breadcrumb(&self, id: CategoryId) -> Vec<&Category> {
        let mut trail = Vec::new();
        let mut next = self.get(id);
        while let Some(category) = next {
            if trail.iter().any(|c: &&Category| c.id == category.id) {
                break; // a cycle in bad data must not hang a child
            }
            trail.push(category);
            next = (category.parent_id != 0).then(|| self.get(category.parent_id)).flatten();
        }
        trail.reverse();
        trail
    }

    /// The categories whose products a listing of `id` shows: `id` itself
    /// and every category below it (a department lists its leaves).
    pub fn subtree(&self, id: CategoryId) -> Vec<CategoryId> {
        let mut ids = vec![id];
        let mut i = 0;
        while i < ids.len() {
            let parent = ids[i];
            ids.extend(self.children(parent).map(|c| c.id).filter(|c| *c != parent));
            i += 1;
            if ids.len() > self.categories.len() {
                break; // cycles
            }
        }
        ids
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> CategoryTree {
        let c = |id, parent_id, name: &str| Category { id, parent_id, name: name.into(), slug: name.to_lowercase(), updated: id as i64 };
        CategoryTree { categories: vec![c(1, 0, "Toys"), c(2, 0, "Books"), c(3, 1, "Trains"), c(4, 3, "Wooden"), c(5, 2, "Picture")] }
    }

    #[test]
    fn breadcrumb_runs_from_the_department_down() {
        let t = tree();
        let names: Vec<_> = t.breadcrumb(4).iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["Toys", "Trains", "Wooden"]);
        assert!(t.breadcrumb(99).is_empty());
    }

    #[test]
    fn subtree_holds_every_descendant() {
        let t = tree();
        assert_eq!(t.subtree(1), vec![1, 3, 4]);
        assert_eq!(t.subtree(5), vec![5]);
        assert_eq!(t.top_level().map(|c| c.id).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(t.modified(), 5);
    }
}
