//! The policy fetch's HTTP exchange: the request's bytes, and responses fed
//! to the reader in every chunk size from 1 byte to the whole.

use smtp_mx::engine::PolicyFetch;
use smtp_mx::sts::http::{
    HttpError, MAX_BODY, MAX_HEAD, PolicyUrl, Progress, Response, ResponseReader, parse_url,
    request,
};

/// `bytes` fed in chunks of `size`, then the end of the stream (unless the
/// reader was done before it).
fn read_in(bytes: &[u8], size: usize) -> Result<Response, HttpError> {
    let mut reader = ResponseReader::new();
    let mut done = false;
    for chunk in bytes.chunks(size) {
        if reader.feed(chunk)? == Progress::Done {
            done = true;
            break;
        }
    }
    if !done {
        reader.end()?;
    }
    reader.into_response()
}

/// The same outcome for every chunk size.
fn read_all_sizes(bytes: &[u8]) -> Result<Response, HttpError> {
    let whole = read_in(bytes, bytes.len().max(1));
    // Every size up to 300, then a spread of larger ones (the long bodies
    // would take long byte by byte in a debug build otherwise).
    let sizes = (1..=300).chain([511, 1000, 4096, 8191, 8192, 65_537]);
    for size in sizes.filter(|&s| s < bytes.len()) {
        assert_eq!(read_in(bytes, size), whole, "chunk size {size}");
    }
    whole
}

fn ok(status: u16, content_type: Option<&str>, body: &[u8]) -> Result<Response, HttpError> {
    Ok(Response {
        status,
        content_type: content_type.map(str::to_owned),
        body: body.to_vec(),
        truncated: false,
    })
}

const POLICY: &[u8] =
    b"version: STSv1\r\nmode: enforce\r\nmx: mx.example.com\r\nmax_age: 86400\r\n";

#[test]
fn url_parts() {
    let url = parse_url("https://mta-sts.Example.COM./.well-known/mta-sts.txt").unwrap();
    assert_eq!(
        url,
        PolicyUrl {
            host: "mta-sts.example.com".into(),
            port: 443,
            path: "/.well-known/mta-sts.txt".into()
        }
    );
    let url = parse_url("https://localhost:8443").unwrap();
    assert_eq!(
        (url.host.as_str(), url.port, url.path.as_str()),
        ("localhost", 8443, "/")
    );
    let url = parse_url("https://h.example?x=1#frag").unwrap();
    assert_eq!(url.path, "/?x=1");
    for bad in [
        "http://mta-sts.example.com/",
        "ftp://x",
        "https://",
        "https://user@mta-sts.example.com/",
        "https://127.0.0.1/",
        "https://[::1]/",
        "https://a..b/",
        "https://host:99999/",
        "https://host:/",
        "https://ho st/",
        "https://host/a b",
        "https://host/\u{7f}",
        "",
    ] {
        assert!(matches!(parse_url(bad), Err(HttpError::Url(_))), "{bad}");
    }
}

#[test]
fn request_bytes() {
    let url = parse_url("https://mta-sts.example.com/.well-known/mta-sts.txt").unwrap();
    assert_eq!(
        request(&url),
        b"GET /.well-known/mta-sts.txt HTTP/1.1\r\nHost: mta-sts.example.com\r\n\
          Connection: close\r\nAccept: text/plain\r\n\r\n"
    );
    let url = parse_url("https://localhost:4443/p").unwrap();
    assert_eq!(
        request(&url),
        b"GET /p HTTP/1.1\r\nHost: localhost:4443\r\nConnection: close\r\nAccept: text/plain\r\n\r\n"
    );
}

#[test]
fn content_length_body() {
    let mut bytes = format!(
        "HTTP/1.1 200 OK\r\nServer: x\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Content-Length: {}\r\n\r\n",
        POLICY.len()
    )
    .into_bytes();
    bytes.extend_from_slice(POLICY);
    // What follows the body is not read.
    bytes.extend_from_slice(b"HTTP/1.1 500 junk\r\n\r\n");
    assert_eq!(
        read_all_sizes(&bytes),
        ok(200, Some("text/plain; charset=utf-8"), POLICY)
    );
}

#[test]
fn body_to_the_end_of_the_stream() {
    let mut bytes = b"HTTP/1.0 200 OK\nContent-Type: text/plain\n\n".to_vec();
    bytes.extend_from_slice(POLICY);
    assert_eq!(read_all_sizes(&bytes), ok(200, Some("text/plain"), POLICY));
    // A coding other than chunked last: to the end of the stream as well.
    let mut bytes =
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nContent-Length: 3\r\n\r\n".to_vec();
    bytes.extend_from_slice(b"abcdef");
    assert_eq!(read_all_sizes(&bytes), ok(200, None, b"abcdef"));
}

#[test]
fn chunked_body() {
    let bytes = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\
        Transfer-Encoding: gzip, Chunked\r\nContent-Length: 999\r\n\r\n\
        5\r\nhello\r\n1A;name=value\r\n, policy text of 26 bytes!\r\n\
        0\r\nX-Trailer: t\r\n\r\nafter";
    assert_eq!(
        read_all_sizes(bytes),
        ok(200, Some("text/plain"), b"hello, policy text of 26 bytes!")
    );
    // Bare LF line ends inside the coding are taken too.
    let bytes = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\nab\n0\n\n";
    assert_eq!(read_all_sizes(bytes), ok(200, None, b"ab"));
}

#[test]
fn redirects_and_errors_are_returned_as_they_are() {
    let bytes = b"HTTP/1.1 301 Moved Permanently\r\nLocation: https://elsewhere.example/\r\n\
        Content-Type: text/html\r\nContent-Length: 5\r\n\r\nmoved";
    assert_eq!(read_all_sizes(bytes), ok(301, Some("text/html"), b"moved"));
    let bytes = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
    assert_eq!(read_all_sizes(bytes), ok(404, None, b""));
    // No body for 204 and 304, whatever the fields say.
    let bytes = b"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n";
    assert_eq!(read_all_sizes(bytes), ok(304, None, b""));
    let bytes = b"HTTP/1.1 204\r\n\r\n";
    assert_eq!(read_all_sizes(bytes), ok(204, None, b""));
}

#[test]
fn interim_responses_are_skipped() {
    let bytes = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n\
        HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    assert_eq!(read_all_sizes(bytes), ok(200, None, b"ok"));
    let bytes = b"HTTP/1.1 101 Switching Protocols\r\n\r\n";
    assert_eq!(read_all_sizes(bytes), Err(HttpError::Interim));
    let many = b"HTTP/1.1 100 Continue\r\n\r\n".repeat(9);
    assert_eq!(read_all_sizes(&many), Err(HttpError::Interim));
}

#[test]
fn folded_and_repeated_fields() {
    let bytes = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain;\r\n charset=us-ascii\r\n\
        Content-Type: text/html\r\nContent-Length: 2, 2\r\n\r\nok";
    assert_eq!(
        read_all_sizes(bytes),
        ok(200, Some("text/plain; charset=us-ascii"), b"ok")
    );
}

#[test]
fn a_body_over_the_limit_is_cut_one_byte_past_it() {
    let big = vec![b'a'; MAX_BODY + 5000];
    let expected = Ok(Response {
        status: 200,
        content_type: Some("text/plain".into()),
        body: big[..MAX_BODY].to_vec(),
        truncated: true,
    });
    for head in [
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n",
            big.len()
        ),
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n".to_owned(),
    ] {
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(&big);
        assert_eq!(read_all_sizes(&bytes), expected);
    }
    // Chunked, in chunks of 1000.
    let mut bytes =
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n"
            .to_vec();
    for piece in big.chunks(1000) {
        bytes.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        bytes.extend_from_slice(piece);
        bytes.extend_from_slice(b"\r\n");
    }
    bytes.extend_from_slice(b"0\r\n\r\n");
    assert_eq!(read_all_sizes(&bytes), expected);
    // Exactly the limit is whole and not cut.
    let mut bytes = format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n",
        MAX_BODY - 1
    )
    .into_bytes();
    bytes.extend_from_slice(&big[..MAX_BODY - 1]);
    let r = read_all_sizes(&bytes).unwrap();
    assert_eq!((r.body.len(), r.truncated), (MAX_BODY - 1, false));
}

#[test]
fn the_head_is_bounded() {
    let filler = "X-Filler: ".to_owned() + &"y".repeat(MAX_HEAD);
    let bytes = format!("HTTP/1.1 200 OK\r\n{filler}\r\n\r\n");
    assert_eq!(
        read_all_sizes(bytes.as_bytes()),
        Err(HttpError::HeadTooLarge)
    );
    // A head that never ends is cut at the bound too, not gathered.
    let endless = format!("HTTP/1.1 200 OK\r\n{}", "X: y\r\n".repeat(4000));
    assert_eq!(
        read_all_sizes(endless.as_bytes()),
        Err(HttpError::HeadTooLarge)
    );
    // Just under the bound is fine.
    let head = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX: ";
    let pad = "z".repeat(MAX_HEAD - head.len() - 4);
    let bytes = format!("{head}{pad}\r\n\r\n");
    assert_eq!(bytes.len(), MAX_HEAD);
    assert_eq!(read_all_sizes(bytes.as_bytes()), ok(200, None, b""));
    // The trailer of a chunked body is bounded as well.
    let bytes = format!(
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nT: {}\r\n\r\n",
        "t".repeat(MAX_HEAD)
    );
    assert_eq!(
        read_all_sizes(bytes.as_bytes()),
        Err(HttpError::HeadTooLarge)
    );
}

#[test]
fn malformed_input_is_a_typed_error() {
    let cases: &[(&[u8], HttpError)] = &[
        (b"HTTP/2 200 OK\r\n\r\n", HttpError::StatusLine),
        (b"HTTP/1.1 20 OK\r\n\r\n", HttpError::StatusLine),
        (b"HTTP/1.1 2000 OK\r\n\r\n", HttpError::StatusLine),
        (b"HTTP/1.1 099 x\r\n\r\n", HttpError::StatusLine),
        (b"HTTP/1.1 abc OK\r\n\r\n", HttpError::StatusLine),
        (b"SMTP 220 hello\r\n\r\n", HttpError::StatusLine),
        (b"\r\n\r\n", HttpError::StatusLine),
        (
            b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
            HttpError::HeaderField,
        ),
        (
            b"HTTP/1.1 200 OK\r\nbad name: x\r\n\r\n",
            HttpError::HeaderField,
        ),
        (b"HTTP/1.1 200 OK\r\n: x\r\n\r\n", HttpError::HeaderField),
        (
            b"HTTP/1.1 200 OK\r\n folded-first\r\n\r\n",
            HttpError::HeaderField,
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
            HttpError::ContentLength,
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 1, 2\r\n\r\n",
            HttpError::ContentLength,
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            HttpError::ContentLength,
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n",
            HttpError::ContentLength,
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            HttpError::Chunk,
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabX\r\n",
            HttpError::Chunk,
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffff\r\n",
            HttpError::Chunk,
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\r\n",
            HttpError::Chunk,
        ),
        // The stream ends too early.
        (b"", HttpError::Incomplete),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n",
            HttpError::Incomplete,
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nabc",
            HttpError::Incomplete,
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nabcde\r\n",
            HttpError::Incomplete,
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n",
            HttpError::Incomplete,
        ),
    ];
    for (bytes, error) in cases {
        assert_eq!(
            read_all_sizes(bytes),
            Err(error.clone()),
            "{}",
            String::from_utf8_lossy(bytes)
        );
    }
    let line = format!(
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;{}\r\n",
        "e".repeat(2000)
    );
    assert_eq!(read_all_sizes(line.as_bytes()), Err(HttpError::Chunk));
}

/// Arbitrary bytes never panic the reader, and never grow it past its
/// bounds.
#[test]
fn arbitrary_bytes_never_panic() {
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let alphabet = b"HTTP/1.0 2003\r\n:;aF- \tchunkedContent-Length";
    for _ in 0..2000 {
        let len = (next() % 200) as usize;
        let mut bytes = b"HTTP/1.1 200 OK\r\n".to_vec();
        bytes.extend((0..len).map(|_| alphabet[(next() % alphabet.len() as u64) as usize]));
        for size in [1, 3, 7, 200] {
            if let Ok(r) = read_in(&bytes, size) {
                assert!(r.body.len() <= MAX_BODY);
            }
        }
    }
}

#[test]
fn the_response_becomes_the_engines_fetch_result() {
    let r = Response {
        status: 200,
        content_type: Some("text/plain".into()),
        body: b"x".to_vec(),
        truncated: false,
    };
    assert_eq!(
        PolicyFetch::from(r),
        PolicyFetch::Response {
            status: 200,
            content_type: Some("text/plain".into()),
            body: b"x".to_vec()
        }
    );
    // Taking the response before it is whole is an error.
    let mut reader = ResponseReader::new();
    assert_eq!(reader.feed(b"HTTP/1.1 200 OK\r\n").unwrap(), Progress::More);
    assert_eq!(reader.into_response(), Err(HttpError::Incomplete));
}
