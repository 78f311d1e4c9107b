//! Line-oriented text files (CSV, NDJSON) cut into blocks of whole records, so that one
//! file's blocks parse in parallel on rayon while its records keep their numbers.

use std::{
    collections::VecDeque,
    io::{self, Read},
    sync::{
        Arc,
        mpsc::{self, Receiver},
    },
};

use arrow::{array::RecordBatch, error::ArrowError};

/// Bytes per block: large enough that a block is worth a task, small enough that a group of
/// them stays a few megabytes per core.
pub(crate) const BLOCK_BYTES: usize = 4 << 20;

/// The whole records of a reader, block by block.
pub(crate) struct Blocks<R> {
    reader: R,
    /// Quoted fields may hold newlines (CSV); `None` where a newline always ends a record.
    quote: Option<u8>,
    block_bytes: usize,
    /// The start of the next block: the bytes after the last whole record of the previous.
    carry: Vec<u8>,
    finished: bool,
}

impl<R: Read> Blocks<R> {
    pub(crate) fn new(reader: R, quote: Option<u8>, block_bytes: usize) -> Self {
        Blocks {
            reader,
            quote,
            block_bytes,
            carry: Vec::new(),
            finished: false,
        }
    }

    /// The next block, about `block_bytes` long and ending with a record; `None` at the end.
    pub(crate) fn next_block(&mut self) -> io::Result<Option<Vec<u8>>> {
        let mut block = std::mem::take(&mut self.carry);
        // Where the search for the last record end may start: the carry holds none.
        let mut searched = 0;
        loop {
            if self.finished {
                return Ok((!block.is_empty()).then_some(block));
            }
            // A record longer than a block grows its block a block at a time.
            let wanted = match self.block_bytes.checked_sub(block.len()) {
                Some(0) | None => self.block_bytes,
                Some(missing) => missing,
            };
            block.reserve(wanted);
            let read = (&mut self.reader)
                .take(wanted as u64)
                .read_to_end(&mut block)?;
            self.finished = read == 0;
            if self.finished {
                continue;
            }
            if block.len() < self.block_bytes {
                continue;
            }
            if let Some(end) = record_end(&block, searched, self.quote) {
                self.carry = block.split_off(end);
                return Ok(Some(block));
            }
            searched = block.len();
        }
    }
}

/// Where the last record of `bytes` ends (after its newline), looking from `from` on; `bytes`
/// starts with a record. A newline inside quotes does not end one: quotes escape as `""`, so
/// counting them says whether a newline is inside.
fn record_end(bytes: &[u8], from: usize, quote: Option<u8>) -> Option<usize> {
    let last = from + memchr::memrchr(b'\n', &bytes[from..])?;
    let quote = match quote {
        Some(quote) if memchr::memchr(quote, bytes).is_some() => quote,
        _ => return Some(last + 1),
    };
    let mut quoted = false;
    let mut end = None;
    for at in memchr::memchr2_iter(quote, b'\n', &bytes[..=last]) {
        if bytes[at] == quote {
            quoted = !quoted;
        } else if !quoted && at >= from {
            end = Some(at + 1);
        }
    }
    end
}

/// What parsing one block gives.
type Parsed = Result<Vec<RecordBatch>, ArrowError>;

/// Parses a block into batches; the flag says whether it is the file's first block.
pub(crate) type BlockParser = Arc<dyn Fn(&[u8], bool) -> Parsed + Send + Sync>;

/// Parses a file's blocks on rayon, a few at a time while the next are read, and hands their
/// batches on in file order with the number of the first record of each. Parse errors name
/// the file's record, for Arrow numbers lines from 1 within each block.
pub(crate) fn parse_in_parallel<R: Read>(
    mut blocks: Blocks<R>,
    first_record: u64,
    parse: BlockParser,
    emit: &mut dyn FnMut(RecordBatch, u64) -> crate::Result<()>,
) -> Result<(), BlockError> {
    let in_flight = rayon::current_num_threads() + 1;
    let mut pending: VecDeque<Receiver<Parsed>> = VecDeque::with_capacity(in_flight);
    let mut next_record = first_record;
    let mut first_block = true;
    let mut spawned = 0u64;
    let mut blocks_done = false;
    loop {
        while !blocks_done && pending.len() < in_flight {
            let Some(block) = blocks.next_block().map_err(BlockError::Read)? else {
                blocks_done = true;
                break;
            };
            let (sender, receiver) = mpsc::sync_channel(1);
            let parse = parse.clone();
            let first = spawned == 0;
            spawned += 1;
            rayon::spawn(move || {
                // The receiver is gone only when an earlier block failed.
                let _ = sender.send(parse(&block, first));
            });
            pending.push_back(receiver);
        }
        let Some(oldest) = pending.pop_front() else {
            return Ok(());
        };
        let parsed = oldest.recv().map_err(|_| BlockError::Parse {
            after_record: next_record - 1,
            problem: "the parser stopped".to_owned(),
        })?;
        // The header line, if any, is the first block's line 1.
        let block_start = if first_block { 1 } else { next_record };
        first_block = false;
        let batches = parsed.map_err(|e| BlockError::Parse {
            after_record: next_record - 1,
            problem: renumber(&e.to_string(), block_start),
        })?;
        for batch in batches {
            let rows = batch.num_rows() as u64;
            emit(batch, next_record).map_err(BlockError::Emit)?;
            next_record += rows;
        }
    }
}

/// Why a file read in blocks stopped.
#[derive(Debug)]
pub(crate) enum BlockError {
    Read(io::Error),
    Parse { after_record: u64, problem: String },
    Emit(crate::Error),
}

/// Turns Arrow's "line N" of a block into the file's record number, `block_start` being the
/// number of the block's first record.
fn renumber(message: &str, block_start: u64) -> String {
    let Some(at) = message.find("line ") else {
        return message.to_owned();
    };
    let digits = &message[at + 5..];
    let length = digits.bytes().take_while(u8::is_ascii_digit).count();
    let Ok(line) = digits[..length].parse::<u64>() else {
        return message.to_owned();
    };
    let record = block_start + line.saturating_sub(1);
    format!("{}record {record}{}", &message[..at], &digits[length..])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blocks(text: &str, quote: Option<u8>, block_bytes: usize) -> Vec<String> {
        let mut blocks = Blocks::new(text.as_bytes(), quote, block_bytes);
        let mut all = Vec::new();
        while let Some(block) = blocks.next_block().unwrap() {
            all.push(String::from_utf8(block).unwrap());
        }
        all
    }

    #[test]
    fn blocks_end_with_whole_records_and_lose_no_byte() {
        let text: String = (0..5000).map(|i| format!("S{i},{i}\n")).collect();
        let cut = blocks(&text, Some(b'"'), 4096);
        assert!(cut.len() > 1, "{} blocks", cut.len());
        assert!(cut.iter().all(|b| b.ends_with('\n')));
        assert_eq!(cut.concat(), text);
        let unterminated = "a,b\nc,d";
        assert_eq!(blocks(unterminated, None, 1 << 16).concat(), unterminated);
        assert!(blocks("", None, 1 << 16).is_empty());
    }

    #[test]
    fn newlines_inside_quotes_do_not_end_a_record() {
        assert_eq!(record_end(b"a,\"x\ny\"\nb,\"z\n", 0, Some(b'"')), Some(8));
        assert_eq!(record_end(b"a,\"x\ny\"\"\n", 0, Some(b'"')), None);
        assert_eq!(record_end(b"a,\"x\ny\"\"\n", 0, None), Some(9));
        assert_eq!(record_end(b"a\nb\n", 2, Some(b'"')), Some(4));
        let quoted: String = (0..20_000)
            .map(|i| format!("S{i},\"line one\nline \"\"two\"\"\"\n"))
            .collect();
        let cut = blocks(&quoted, Some(b'"'), 1 << 16);
        assert!(cut.len() > 1);
        assert!(
            cut.iter().all(|b| b.starts_with('S')),
            "a block starts mid-record"
        );
        assert_eq!(cut.concat(), quoted);
    }

    #[test]
    fn a_record_longer_than_a_block_makes_its_block_longer() {
        let long = format!("S1,\"{}\"\nS2,1\n", "x\n".repeat(100_000));
        let cut = blocks(&long, Some(b'"'), 1 << 16);
        assert!(cut[0].starts_with("S1") && cut[0].len() > 200_000);
        assert_eq!(cut.concat(), long);
    }

    #[test]
    fn arrow_line_numbers_become_file_records() {
        assert_eq!(
            renumber(
                "Csv error: incorrect number of fields for line 3, expected 2 got 1",
                1001
            ),
            "Csv error: incorrect number of fields for record 1003, expected 2 got 1"
        );
        assert_eq!(renumber("no position", 7), "no position");
    }
}
