package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strconv"
)

// apiError is an error zest answers itself, in OpenAI's envelope.
type apiError struct {
	Status  int
	Type    string // invalid_request_error, server_error, ...
	Code    string // "" = null
	Param   string // "" = null
	Message string
}

func (e *apiError) Error() string { return e.Message }

func badRequest(param, msg string) *apiError {
	return &apiError{Status: http.StatusBadRequest, Type: "invalid_request_error", Param: param, Message: msg}
}

// writeError writes e as {"error":{"message","type","param","code"}} with e.Status.
func writeError(w http.ResponseWriter, e *apiError) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Del("Content-Length")
	b := make([]byte, 0, 128+len(e.Message))
	b = append(b, `{"error":{"message":`...)
	b = appendJSONString(b, e.Message)
	b = append(b, `,"type":`...)
	b = appendJSONString(b, e.Type)
	b = append(b, `,"param":`...)
	b = appendNullable(b, e.Param)
	b = append(b, `,"code":`...)
	b = appendNullable(b, e.Code)
	b = append(b, "}}\n"...)
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(e.Status)
	w.Write(b)
}

func appendNullable(b []byte, s string) []byte {
	if s == "" {
		return append(b, "null"...)
	}
	return appendJSONString(b, s)
}

func appendJSONString(b []byte, s string) []byte {
	q, _ := json.Marshal(s) // a string always marshals
	return append(b, q...)
}

// statusClientClosed is logged (never sent) when the client went away first, as nginx does.
const statusClientClosed = 499

// upstreamError maps a failure to reach or read the upstream to what the client is told:
// 504 for a timeout, 499 (nothing written) when the client itself went away, else 502.
func upstreamError(clientCtx context.Context, err error) *apiError {
	if clientCtx != nil && errors.Is(clientCtx.Err(), context.Canceled) {
		return &apiError{Status: statusClientClosed, Type: "server_error", Message: "client closed the request"}
	}
	if isMaxBytes(err) {
		return &apiError{Status: http.StatusRequestEntityTooLarge, Type: "invalid_request_error", Code: "request_too_large",
			Message: "Request body is larger than this proxy's limit."}
	}
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return &apiError{Status: http.StatusGatewayTimeout, Type: "server_error", Code: "upstream_timeout",
			Message: "The upstream did not answer in time."}
	}
	return &apiError{Status: http.StatusBadGateway, Type: "server_error", Code: "upstream_unavailable",
		Message: "The upstream could not be reached: " + errText(err)}
}

// errText is the innermost useful part of a transport error, without URLs that could carry
// credentials in their query.
func errText(err error) string {
	var op *net.OpError
	if errors.As(err, &op) {
		return op.Op + ": " + op.Err.Error()
	}
	var ue interface{ Unwrap() error }
	if errors.As(err, &ue) && ue.Unwrap() != nil {
		return ue.Unwrap().Error()
	}
	return err.Error()
}
