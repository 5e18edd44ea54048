//! The YAML of a scenario as a tree in which every key and every value knows its line and
//! column, so lint (and the loader, when serde's own position is the enclosing mapping) can
//! point at the offending key itself.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

/// 1-based line and column.
pub type Pos = (u64, u64);

#[derive(Debug, Clone)]
pub enum Node {
    Map(Vec<Entry>),
    Seq(Vec<Item>),
    /// A string, number or boolean, as text.
    Scalar(String),
    Null,
}

#[derive(Debug, Clone)]
pub struct Entry {
    pub key: String,
    pub key_pos: Pos,
    pub value: Node,
    pub value_pos: Pos,
}

#[derive(Debug, Clone)]
pub struct Item {
    pub value: Node,
    pub pos: Pos,
}

fn pos<T>(spanned: &Spanned<T>) -> Pos {
    (spanned.referenced.line(), spanned.referenced.column())
}

impl Node {
    /// Parses YAML text; None when it is not YAML (serde's own error says where).
    pub fn parse(text: &str) -> Option<Node> {
        serde_saphyr::from_str::<Node>(text).ok()
    }

    pub fn entries(&self) -> &[Entry] {
        match self {
            Node::Map(entries) => entries,
            _ => &[],
        }
    }

    pub fn items(&self) -> &[Item] {
        match self {
            Node::Seq(items) => items,
            _ => &[],
        }
    }

    pub fn entry(&self, key: &str) -> Option<&Entry> {
        self.entries().iter().find(|e| e.key == key)
    }

    pub fn get(&self, key: &str) -> Option<&Node> {
        self.entry(key).map(|e| &e.value)
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Node::Scalar(s) => Some(s),
            _ => None,
        }
    }

    /// The first key named `key` anywhere below this node (depth first), with its position.
    pub fn find_key(&self, key: &str) -> Option<&Entry> {
        match self {
            Node::Map(entries) => {
                entries.iter().find(|e| e.key == key).or_else(|| entries.iter().find_map(|e| e.value.find_key(key)))
            }
            Node::Seq(items) => items.iter().find_map(|i| i.value.find_key(key)),
            _ => None,
        }
    }

    /// The node whose value starts at `at` (a mapping or list serde placed an error at).
    pub fn node_at(&self, at: Pos) -> Option<&Node> {
        match self {
            Node::Map(entries) => entries
                .iter()
                .find_map(|e| if e.value_pos == at || e.key_pos == at { Some(&e.value) } else { e.value.node_at(at) }),
            Node::Seq(items) => {
                items.iter().find_map(|i| if i.pos == at { Some(&i.value) } else { i.value.node_at(at) })
            }
            _ => None,
        }
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Node, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Node, E> {
        Ok(Node::Scalar(v.to_string()))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Node, E> {
        Ok(Node::Scalar(v.to_string()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Node, E> {
        Ok(Node::Scalar(v.to_string()))
    }

    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Node, E> {
        Ok(Node::Scalar(v.to_string()))
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Node, E> {
        Ok(Node::Scalar(v.to_string()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Node, E> {
        Ok(Node::Scalar(v.to_string()))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Node, E> {
        Ok(Node::Scalar(v.to_string()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Node, E> {
        Ok(Node::Scalar(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Node, D::Error> {
        Node::deserialize(deserializer)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Spanned<Node>>()? {
            items.push(Item { pos: pos(&item), value: item.value });
        }
        Ok(Node::Seq(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Spanned<Node>>()? {
            let value = map.next_value::<Spanned<Node>>()?;
            let name = match &key.value {
                Node::Scalar(s) => s.clone(),
                _ => String::new(),
            };
            entries.push(Entry { key: name, key_pos: pos(&key), value_pos: pos(&value), value: value.value });
        }
        Ok(Node::Map(entries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_values_know_where_they_are() {
        let tree = Node::parse("a: 1\nchecks:\n  - id: x\n    object: {kind: Pod, nme: z}\n").unwrap();
        let a = tree.entry("a").unwrap();
        assert_eq!((a.key_pos, a.value_pos), ((1, 1), (1, 4)));
        let check = &tree.get("checks").unwrap().items()[0];
        assert_eq!(check.pos, (3, 5));
        let nme = check.value.find_key("nme").unwrap();
        assert_eq!(nme.key_pos, (4, 25));
        assert_eq!(nme.value.as_str(), Some("z"));
    }
}
