//! BODY and BODYSTRUCTURE (RFC 3501 section 7.4.2) from the MIME tree,
//! with Dovecot's choices where the RFC is silent: text parts without a
//! charset get `("charset" "us-ascii")` (the RFC 2046 default), a
//! multipart without parts gets one empty text/plain part (IMAP needs at
//! least one), extension data is always written out in full.

use imap_codec::imap_types::body::{
    BasicFields, Body, BodyStructure, Disposition, Language, Location, MultiPartExtensionData, SinglePartExtensionData,
    SpecificFields,
};
use imap_codec::imap_types::core::{IString, NString, Vec1};

use super::envelope::envelope;
use super::mime::{ContentType, Entity, Kind, Lexer, parse_content_type, slice, unfold};
use super::{istring, nstring};

type Params = Vec<(IString<'static>, IString<'static>)>;

pub(super) fn body_structure(raw: &[u8], entity: &Entity, extended: bool) -> BodyStructure<'static> {
    let Kind::Multipart(children) = &entity.kind else {
        return single(raw, entity, extended);
    };
    let bodies: Vec<_> = children.iter().map(|child| body_structure(raw, child, extended)).collect();
    BodyStructure::Multi {
        bodies: Vec1::try_from(bodies).unwrap_or_else(|_| Vec1::from(empty_part(extended))),
        subtype: istring(&entity.content_type.subtype),
        extension_data: extended.then(|| MultiPartExtensionData {
            parameter_list: params(&entity.content_type.params),
            tail: Some(disposition(raw, entity)),
        }),
    }
}

fn single(raw: &[u8], entity: &Entity, extended: bool) -> BodyStructure<'static> {
    let ct = &entity.content_type;
    let body = slice(raw, &entity.body);
    let lines = u32::try_from(body.iter().filter(|&&b| b == b'\n').count()).unwrap_or(u32::MAX);
    let is_text = ct.is("text", None);
    let field = |name: &str| entity.field(raw, name).map(unfold);
    let encoding = field("Content-Transfer-Encoding").map(|v| {
        let mut lx = Lexer::new(&v);
        lx.skip_cfws();
        lx.token().to_vec()
    });
    let basic = BasicFields {
        parameter_list: type_params(ct, is_text),
        id: nstring(field("Content-ID").as_deref()),
        description: nstring(field("Content-Description").as_deref()),
        content_transfer_encoding: istring(encoding.as_deref().filter(|e| !e.is_empty()).unwrap_or(b"7bit")),
        size: u32::try_from(body.len()).unwrap_or(u32::MAX),
    };
    let specific = match &entity.kind {
        Kind::Message(nested) => SpecificFields::Message {
            envelope: Box::new(envelope(raw, nested)),
            body_structure: Box::new(body_structure(raw, nested, extended)),
            number_of_lines: lines,
        },
        _ if is_text => SpecificFields::Text { subtype: istring(&ct.subtype), number_of_lines: lines },
        // Only past the nesting limit: a container we did not open must
        // not be announced as one, or clients would expect its structure.
        _ if ct.is("multipart", None) || ct.is("message", Some("rfc822")) => {
            SpecificFields::Basic { r#type: istring(b"application"), subtype: istring(b"octet-stream") }
        }
        _ => SpecificFields::Basic { r#type: istring(&ct.r#type), subtype: istring(&ct.subtype) },
    };
    BodyStructure::Single {
        body: Body { basic, specific },
        extension_data: extended.then(|| SinglePartExtensionData {
            md5: nstring(field("Content-MD5").as_deref()),
            tail: Some(disposition(raw, entity)),
        }),
    }
}

fn params(params: &[(Vec<u8>, Vec<u8>)]) -> Params {
    params.iter().map(|(name, value)| (istring(name), istring(value))).collect()
}

fn us_ascii() -> Params {
    vec![(istring(b"charset"), istring(b"us-ascii"))]
}

/// RFC 2046 section 4.1.2: text without a charset is US-ASCII.
fn type_params(ct: &ContentType, is_text: bool) -> Params {
    let mut list = params(&ct.params);
    if is_text && ct.param("charset").is_none() {
        list.extend(us_ascii());
    }
    list
}

/// Disposition, language and location: the extension data both kinds of
/// part end with.
fn disposition(raw: &[u8], entity: &Entity) -> Disposition<'static> {
    let field = |name: &str| entity.field(raw, name).map(unfold);
    let disposition = field("Content-Disposition")
        .map(|v| parse_content_type(&v, false))
        .filter(|d| !d.r#type.is_empty())
        .map(|d| (istring(&d.r#type), params(&d.params)));
    let mut language = Vec::new();
    if let Some(value) = field("Content-Language") {
        let mut lx = Lexer::new(&value);
        loop {
            lx.skip_cfws();
            if lx.peek().is_none() {
                break;
            }
            match lx.token() {
                [] => lx.bump(),
                tag => language.push(istring(tag)),
            }
        }
    }
    Disposition {
        disposition,
        tail: Some(Language {
            language,
            tail: Some(Location { location: nstring(field("Content-Location").as_deref()), extensions: Vec::new() }),
        }),
    }
}

/// Dovecot's stand-in for the part a multipart must have.
fn empty_part(extended: bool) -> BodyStructure<'static> {
    BodyStructure::Single {
        body: Body {
            basic: BasicFields {
                parameter_list: us_ascii(),
                id: NString::NIL,
                description: NString::NIL,
                content_transfer_encoding: istring(b"7bit"),
                size: 0,
            },
            specific: SpecificFields::Text { subtype: istring(b"plain"), number_of_lines: 0 },
        },
        extension_data: extended.then(|| SinglePartExtensionData {
            md5: NString::NIL,
            tail: Some(Disposition {
                disposition: None,
                tail: Some(Language {
                    language: Vec::new(),
                    tail: Some(Location { location: NString::NIL, extensions: Vec::new() }),
                }),
            }),
        }),
    }
}
