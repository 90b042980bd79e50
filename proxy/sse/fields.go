package sse

import "github.com/zest-proxy/zest/internal/jsonscan"

// field is one accumulated JSON member. When str is set, val holds the
// escaped contents of the concatenated string deltas; otherwise val is the
// raw JSON of the last value seen.
type field struct {
	key []byte
	val []byte
	str bool
	obj bool      // the value is the object sub (see mergeObj)
	sub fieldList // members of an object value merged with mergeObj
}

// fieldList is a small ordered map of accumulated members, in the order their
// keys were first seen. Lists are short (a handful of keys), so lookup is a
// linear scan.
type fieldList []field

func (fl fieldList) find(key []byte) int {
	for i := range fl {
		if string(fl[i].key) == string(key) {
			return i
		}
	}
	return -1
}

func (fl *fieldList) slot(key []byte) *field {
	if i := fl.find(key); i >= 0 {
		return &(*fl)[i]
	}
	*fl = append(*fl, field{key: append([]byte(nil), key...)})
	return &(*fl)[len(*fl)-1]
}

// merge folds one delta value into the list:
//   - null never overwrites an earlier value (it is kept only when the key
//     had nothing else, so a field that is always null stays null);
//   - with concat, strings are appended to the strings seen before;
//   - any other value replaces the earlier one (last value wins).
func (fl *fieldList) merge(key, v []byte, concat bool) {
	if isNull(v) {
		if fl.find(key) < 0 {
			f := fl.slot(key)
			f.val = append(f.val, "null"...)
		}
		return
	}
	f := fl.slot(key)
	if s, ok := strContents(v); ok && concat {
		if !f.str {
			f.str, f.obj = true, false
			f.val = f.val[:0]
		}
		f.val = append(f.val, s...)
		return
	}
	f.str, f.obj = false, false
	f.val = append(f.val[:0], v...)
}

// mergeObj merges an object delta member by member into key's value, strings
// concatenated (used for function.name/arguments and similar). A non-object
// falls back to merge.
func (fl *fieldList) mergeObj(key, v []byte) error {
	if len(v) == 0 || v[0] != '{' {
		fl.merge(key, v, false)
		return nil
	}
	f := fl.slot(key)
	if !f.obj {
		f.obj, f.str = true, false
		f.val = f.val[:0]
	}
	m := jsonscan.NewMembers(v)
	for {
		k, val, ok := m.Next()
		if !ok {
			return m.Err()
		}
		f.sub.merge(k, val, true)
	}
}

// setOnce stores v as the value of key unless a non-empty, non-null value
// is already there (used for ids, where repeats must not be concatenated).
func (fl *fieldList) setOnce(key, v []byte) {
	if isNull(v) || string(v) == `""` {
		if fl.find(key) < 0 {
			fl.slot(key).val = append([]byte(nil), v...)
		}
		return
	}
	f := fl.slot(key)
	if len(f.val) > 0 && !isNull(f.val) && string(f.val) != `""` {
		return
	}
	f.str, f.obj = false, false
	f.val = append(f.val[:0], v...)
}

// get returns the member's JSON value, or nil when absent.
func (fl fieldList) get(key string) *field {
	for i := range fl {
		if string(fl[i].key) == key {
			return &fl[i]
		}
	}
	return nil
}

// appendValue appends f's value as JSON.
func (f *field) appendValue(dst []byte) []byte {
	if f.obj {
		dst = append(dst, '{')
		dst = f.sub.appendFields(dst, false)
		return append(dst, '}')
	}
	if f.str {
		dst = append(dst, '"')
		dst = append(dst, f.val...)
		return append(dst, '"')
	}
	return append(dst, f.val...)
}

// appendMember appends ,"key":value (the comma only when comma is set).
func appendMember(dst []byte, comma bool, key []byte, f *field) []byte {
	if comma {
		dst = append(dst, ',')
	}
	dst = append(dst, '"')
	dst = append(dst, key...)
	dst = append(dst, '"', ':')
	return f.appendValue(dst)
}

// appendFields appends every member of fl whose key is not in skip, each
// preceded by a comma when comma is set or a member was already written.
func (fl fieldList) appendFields(dst []byte, comma bool, skip ...string) []byte {
outer:
	for i := range fl {
		for _, s := range skip {
			if string(fl[i].key) == s {
				continue outer
			}
		}
		dst = appendMember(dst, comma, fl[i].key, &fl[i])
		comma = true
	}
	return dst
}
