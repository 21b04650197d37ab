//! Lookups by a borrowed form of the key, as `HashMap`'s: a `Cache<String, _>` is read,
//! checked and removed from with `&str` keys, with no `String` made per lookup. The
//! borrowed form hashes as the key does (the `Borrow` contract), so it finds the key's shard
//! and slot; many keys over many shards check that no key is looked for in the wrong place.

mod support;

use support::{manual, secs};

#[test]
fn a_string_keyed_cache_answers_str_lookups() {
    let (builder, _clock) = manual::<String, u32>(secs(60));
    let cache = builder.shards(16).build().unwrap();
    cache.set("ada".to_string(), 1);
    cache.set("grace".to_string(), 2);

    // Hit and miss, counted as with owned keys.
    assert_eq!(cache.get("ada"), Some(1));
    assert_eq!(cache.get("linus"), None);
    let stats = cache.snapshot();
    assert_eq!((stats.hits, stats.misses), (1, 1));

    // `contains` counts nothing.
    assert!(cache.contains("grace"));
    assert!(!cache.contains("linus"));
    assert_eq!(cache.snapshot().hits + cache.snapshot().misses, 2);

    // Remove returns the value once.
    assert_eq!(cache.remove("grace"), Some(2));
    assert_eq!(cache.remove("grace"), None);
    assert!(!cache.contains("grace"));
    assert_eq!(cache.len(), 1);

    // The owned form still works, and a `&String` too.
    let ada = "ada".to_string();
    assert_eq!(cache.get(&ada), Some(1));
    assert!(cache.contains(&ada));
    assert_eq!(cache.remove(ada.as_str()), Some(1));
    assert!(cache.is_empty());
}

#[test]
fn str_lookups_find_every_key_across_the_shards() {
    let (builder, _clock) = manual::<String, usize>(secs(60));
    let cache = builder.shards(64).seed(7).build().unwrap();
    let keys: Vec<String> = (0..2_000).map(|i| format!("user:{i}")).collect();
    for (i, key) in keys.iter().enumerate() {
        cache.set(key.clone(), i);
    }
    for (i, key) in keys.iter().enumerate() {
        let key: &str = key;
        assert_eq!(cache.get(key), Some(i), "{key}");
        assert!(cache.contains(key), "{key}");
    }
    assert_eq!(cache.get("user:2000"), None);
    for (i, key) in keys.iter().enumerate().filter(|(i, _)| i % 2 == 0) {
        assert_eq!(cache.remove(key.as_str()), Some(i), "{key}");
    }
    assert_eq!(cache.len(), 1_000);
    for (i, key) in keys.iter().enumerate() {
        let expected = (i % 2 == 1).then_some(i);
        assert_eq!(cache.get(key.as_str()), expected, "{key}");
    }
}

/// A remembered "not found" reads as `None` through a borrowed key too, and counts as a
/// hit; a `Vec<u8>`-keyed cache takes `&[u8]`.
#[test]
fn other_borrowed_forms_and_negative_entries() {
    let (builder, _clock) = manual::<String, u32>(secs(60));
    let cache = builder.negative_ttl(secs(5)).build().unwrap();
    let found = cache.take_optional("ghost".to_string(), || Ok::<_, std::io::Error>(None));
    assert_eq!(found.unwrap(), None);
    assert_eq!(cache.get("ghost"), None);
    assert!(
        !cache.contains("ghost"),
        "a remembered \"not found\" holds no value"
    );
    assert_eq!(cache.snapshot().hits, 1);

    let (builder, _clock) = manual::<Vec<u8>, u32>(secs(60));
    let bytes = builder.build().unwrap();
    bytes.set(b"key".to_vec(), 9);
    assert_eq!(bytes.get(&b"key"[..]), Some(9));
    assert_eq!(bytes.remove(&b"key"[..]), Some(9));
    assert_eq!(bytes.get(&b"key"[..]), None);
}
