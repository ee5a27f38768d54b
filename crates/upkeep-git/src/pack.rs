//! Storing the objects of one commit as a single pack, written by hand.
//!
//! Committing a thousand edited files writes a thousand blobs. As loose objects that is a
//! thousand temporary files, compressions and renames — most of what a large commit cost.
//! libgit2 can write them to memory instead (a mempack) and store them as one pack, but its
//! pack builder always searches for deltas between the objects (the search cost more than the
//! loose files saved) and a mempack's own dump packs the whole tree of the commit. So upkeep
//! writes the pack itself: the format (Git's `pack-format.txt`, version 2) is a header, each
//! object as its type and size followed by a zlib stream of its bytes, and a SHA-1 of
//! everything. The zlib streams use *stored* (uncompressed) deflate blocks, which need no
//! compressor and are valid for every reader; `git gc` compresses them later like any loose
//! object. libgit2's indexer then reads the pack back, checks every object's id and the
//! trailer, and writes the index, so a pack that is wrong in any byte is refused, not stored.

use git2::{ObjectType, Odb, Oid};

use crate::GitError;

/// Largest deflate stored block (RFC 1951, 3.2.4).
const STORED_BLOCK: usize = 65_535;

/// `data` as a zlib stream (RFC 1950) of stored deflate blocks.
fn zlib_stored(data: &[u8], out: &mut Vec<u8>) {
    // CMF: deflate, 32K window; FLG: no dictionary, fastest, FCHECK so that CMF*256+FLG is a
    // multiple of 31.
    out.extend_from_slice(&[0x78, 0x01]);
    let mut chunks = data.chunks(STORED_BLOCK).peekable();
    if chunks.peek().is_none() {
        // An empty final stored block.
        out.extend_from_slice(&[0x01, 0x00, 0x00, 0xff, 0xff]);
    }
    while let Some(chunk) = chunks.next() {
        let last = chunks.peek().is_none();
        out.push(u8::from(last));
        let len = u16::try_from(chunk.len()).unwrap_or(u16::MAX);
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(chunk);
    }
    out.extend_from_slice(&adler32(data).to_be_bytes());
}

fn adler32(data: &[u8]) -> u32 {
    const MOD: u32 = 65_521;
    let (mut a, mut b) = (1u32, 0u32);
    // 5552 bytes is the most that can be summed before `b` could overflow.
    for chunk in data.chunks(5552) {
        for &byte in chunk {
            a += u32::from(byte);
            b += a;
        }
        a %= MOD;
        b %= MOD;
    }
    (b << 16) | a
}

fn type_code(kind: ObjectType) -> Option<u8> {
    match kind {
        ObjectType::Commit => Some(1),
        ObjectType::Tree => Some(2),
        ObjectType::Blob => Some(3),
        ObjectType::Tag => Some(4),
        ObjectType::Any => None,
    }
}

/// A version-2 pack of `objects` (type and bytes each).
pub(crate) fn pack(objects: &[(ObjectType, Vec<u8>)]) -> Vec<u8> {
    let size: usize = objects.iter().map(|(_, d)| d.len() + 16).sum();
    let mut out = Vec::with_capacity(size + 32);
    out.extend_from_slice(b"PACK");
    out.extend_from_slice(&2u32.to_be_bytes());
    out.extend_from_slice(
        &u32::try_from(objects.len())
            .unwrap_or(u32::MAX)
            .to_be_bytes(),
    );
    for (kind, data) in objects {
        let code = type_code(*kind).unwrap_or(3);
        // Type and size: 3 type bits and 4 size bits, then 7 size bits per byte.
        let mut len = data.len();
        let mut byte = (code << 4) | u8::try_from(len & 0x0f).unwrap_or(0);
        len >>= 4;
        while len > 0 {
            out.push(byte | 0x80);
            byte = u8::try_from(len & 0x7f).unwrap_or(0);
            len >>= 7;
        }
        out.push(byte);
        zlib_stored(data, &mut out);
    }
    let digest = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, &out);
    out.extend_from_slice(digest.as_ref());
    out
}

/// Reads `ids` from `from` and stores them in `to` as one pack (through libgit2's indexer,
/// which verifies every object).
pub(crate) fn store(from: &Odb<'_>, to: &Odb<'_>, ids: &[Oid]) -> Result<(), GitError> {
    let wrap = |e: git2::Error| GitError::git("storing the new objects", &e);
    let mut objects = Vec::with_capacity(ids.len());
    for id in ids {
        let object = from.read(*id).map_err(wrap)?;
        objects.push((object.kind(), object.data().to_vec()));
    }
    let bytes = pack(&objects);
    let mut writer = to.packwriter().map_err(wrap)?;
    std::io::Write::write_all(&mut writer, &bytes).map_err(|source| GitError::Io {
        what: "storing the new objects".to_owned(),
        source,
    })?;
    writer.commit().map_err(wrap)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adler32_matches_published_values() {
        // (input, checksum, reason)
        let cases: [(&[u8], u32, &str); 3] = [
            (b"", 1, "the empty input"),
            (
                b"Wikipedia",
                0x11E6_0398,
                "the example of the Adler-32 article",
            ),
            (
                &[0xff; 6000],
                0xA497_59EA,
                "longer than one summing chunk, all high bytes",
            ),
        ];
        for (input, want, reason) in cases {
            assert_eq!(adler32(input), want, "{reason}");
        }
    }

    #[test]
    fn git_reads_the_packs_back_object_for_object() {
        let dir = tempfile::tempdir().expect("tempdir");
        let repo = git2::Repository::init_bare(dir.path()).expect("init");
        let odb = repo.odb().expect("odb");
        let big = vec![b'x'; 150_000];
        let two_blocks = vec![0xab; 70_000];
        let blobs: [(&[u8], &str); 4] = [
            (b"", "an empty blob"),
            (b"a: 1\n", "a small blob"),
            (&two_blocks, "more than one stored block"),
            (&big, "a size that needs three size bytes"),
        ];
        let objects: Vec<(ObjectType, Vec<u8>)> = blobs
            .iter()
            .map(|(b, _)| (ObjectType::Blob, b.to_vec()))
            .collect();
        let mut writer = odb.packwriter().expect("packwriter");
        std::io::Write::write_all(&mut writer, &pack(&objects)).expect("write");
        writer.commit().expect("libgit2's indexer accepts the pack");
        for (bytes, reason) in blobs {
            let id = Oid::hash_object(ObjectType::Blob, bytes).expect("hash");
            let read = odb.read(id).expect(reason);
            assert_eq!(read.data(), bytes, "{reason}: read back byte for byte");
        }
        let verify = std::process::Command::new("git")
            .args([
                "--git-dir",
                dir.path().to_str().expect("utf-8"),
                "fsck",
                "--strict",
            ])
            .output()
            .expect("git fsck runs");
        assert!(
            verify.status.success(),
            "Git itself checks the pack: {}",
            String::from_utf8_lossy(&verify.stderr)
        );
    }
}
