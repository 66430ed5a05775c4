// The C HTTP guest: a `wasi:http/proxy` component written against the
// bindings wit-bindgen's C generator makes (gen/, see build.sh).
//
//   GET  /hello  "hello from c"
//   POST /echo   the request body, streamed back chunk by chunk
//   else         404

#include <string.h>
#include "gen/proxy.h"

typedef wasi_http_types_own_outgoing_body_t body_t;

// Starts a response with `status` and `content_type`; returns its body.
static body_t start(exports_wasi_http_incoming_handler_own_response_outparam_t out, uint16_t status,
                    const char *content_type) {
    wasi_http_types_tuple2_field_name_field_value_t entry = {
        .f0 = {(uint8_t *)"content-type", 12},
        .f1 = {(uint8_t *)content_type, strlen(content_type)},
    };
    wasi_http_types_list_tuple2_field_name_field_value_t list = {&entry, 1};
    wasi_http_types_own_fields_t headers;
    wasi_http_types_header_error_t herr;
    wasi_http_types_static_fields_from_list(&list, &headers, &herr);
    wasi_http_types_own_outgoing_response_t response = wasi_http_types_constructor_outgoing_response(headers);
    wasi_http_types_method_outgoing_response_set_status_code(wasi_http_types_borrow_outgoing_response(response),
                                                             status);
    body_t body;
    wasi_http_types_method_outgoing_response_body(wasi_http_types_borrow_outgoing_response(response), &body);
    wasi_http_types_result_own_outgoing_response_error_code_t result = {.is_err = false, .val = {.ok = response}};
    wasi_http_types_static_response_outparam_set(out, &result);
    return body;
}

// Writes `len` bytes in pieces of at most 4096 (blocking-write-and-flush's limit).
static bool write_all(wasi_io_streams_borrow_output_stream_t dst, const uint8_t *data, size_t len) {
    while (len > 0) {
        size_t n = len < 4096 ? len : 4096;
        proxy_list_u8_t piece = {(uint8_t *)data, n};
        wasi_io_streams_stream_error_t err;
        if (!wasi_io_streams_method_output_stream_blocking_write_and_flush(dst, &piece, &err)) {
            if (err.tag == WASI_IO_STREAMS_STREAM_ERROR_LAST_OPERATION_FAILED)
                wasi_io_error_error_drop_own(err.val.last_operation_failed);
            return false;
        }
        data += n;
        len -= n;
    }
    return true;
}

static void finish(body_t body) {
    wasi_http_types_error_code_t err;
    if (!wasi_http_types_static_outgoing_body_finish(body, NULL, &err))
        wasi_http_types_error_code_free(&err);
}

static void reply(exports_wasi_http_incoming_handler_own_response_outparam_t out, uint16_t status,
                  const char *text) {
    body_t body = start(out, status, "text/plain");
    wasi_http_types_own_output_stream_t stream;
    wasi_http_types_method_outgoing_body_write(wasi_http_types_borrow_outgoing_body(body), &stream);
    write_all(wasi_io_streams_borrow_output_stream(stream), (const uint8_t *)text, strlen(text));
    wasi_io_streams_output_stream_drop_own(stream);
    finish(body);
}

static void echo(wasi_http_types_own_incoming_request_t request,
                 exports_wasi_http_incoming_handler_own_response_outparam_t out) {
    wasi_http_types_own_incoming_body_t in_body;
    wasi_http_types_method_incoming_request_consume(wasi_http_types_borrow_incoming_request(request), &in_body);
    wasi_http_types_own_input_stream_t src;
    wasi_http_types_method_incoming_body_stream(wasi_http_types_borrow_incoming_body(in_body), &src);
    body_t body = start(out, 200, "application/octet-stream");
    wasi_http_types_own_output_stream_t dst;
    wasi_http_types_method_outgoing_body_write(wasi_http_types_borrow_outgoing_body(body), &dst);
    for (;;) {
        proxy_list_u8_t chunk;
        wasi_io_streams_stream_error_t err;
        if (!wasi_io_streams_method_input_stream_blocking_read(wasi_io_streams_borrow_input_stream(src), 65536,
                                                               &chunk, &err)) {
            if (err.tag == WASI_IO_STREAMS_STREAM_ERROR_LAST_OPERATION_FAILED)
                wasi_io_error_error_drop_own(err.val.last_operation_failed);
            break;
        }
        bool ok = write_all(wasi_io_streams_borrow_output_stream(dst), chunk.ptr, chunk.len);
        proxy_list_u8_free(&chunk);
        if (!ok)
            break;
    }
    wasi_io_streams_input_stream_drop_own(src);
    wasi_io_streams_output_stream_drop_own(dst);
    wasi_http_types_incoming_body_drop_own(in_body);
    finish(body);
}

void exports_wasi_http_incoming_handler_handle(exports_wasi_http_incoming_handler_own_incoming_request_t request,
                                               exports_wasi_http_incoming_handler_own_response_outparam_t out) {
    wasi_http_types_borrow_incoming_request_t req = wasi_http_types_borrow_incoming_request(request);
    wasi_http_types_method_t method;
    wasi_http_types_method_incoming_request_method(req, &method);
    proxy_string_t path = {0};
    wasi_http_types_method_incoming_request_path_with_query(req, &path);
    bool is = path.len == 6 && memcmp(path.ptr, "/hello", 6) == 0;
    bool echo_path = path.len == 5 && memcmp(path.ptr, "/echo", 5) == 0;
    if (is && method.tag == WASI_HTTP_TYPES_METHOD_GET) {
        reply(out, 200, "hello from c");
    } else if (echo_path && method.tag == WASI_HTTP_TYPES_METHOD_POST) {
        echo(request, out);
    } else {
        reply(out, 404, "not found");
    }
    proxy_string_free(&path);
    wasi_http_types_method_free(&method);
    wasi_http_types_incoming_request_drop_own(request);
}
