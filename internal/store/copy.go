package store

import "reflect"

// deepCopy returns r with nothing shared: its maps, slices and pointers are
// copied all the way down, so that neither the cache nor a caller changes
// the other's record. By reflection, so that a field added to a record is
// copied without anyone remembering to (TestDeepCopyShares nothing).
// Unexported fields (time.Time's location) are shared: nothing changes them.
func deepCopy[T any](r T) T {
	v := reflect.ValueOf(&r).Elem()
	copyRefs(v)
	return r
}

// copyRefs replaces, in place, every reference reachable from v by a copy.
func copyRefs(v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return
		}
		n := reflect.New(v.Type().Elem())
		n.Elem().Set(v.Elem())
		copyRefs(n.Elem())
		v.Set(n)
	case reflect.Slice:
		if v.IsNil() {
			return
		}
		n := reflect.MakeSlice(v.Type(), v.Len(), v.Len())
		reflect.Copy(n, v)
		if hasRefs(v.Type().Elem()) {
			for i := range n.Len() {
				copyRefs(n.Index(i))
			}
		}
		v.Set(n)
	case reflect.Map:
		if v.IsNil() {
			return
		}
		n := reflect.MakeMapWithSize(v.Type(), v.Len())
		deep := hasRefs(v.Type().Elem())
		for it := v.MapRange(); it.Next(); {
			e := it.Value()
			if deep {
				c := reflect.New(e.Type()).Elem()
				c.Set(e)
				copyRefs(c)
				e = c
			}
			n.SetMapIndex(it.Key(), e)
		}
		v.Set(n)
	case reflect.Struct:
		for i := range v.NumField() {
			if f := v.Field(i); f.CanSet() {
				copyRefs(f)
			}
		}
	case reflect.Array:
		for i := range v.Len() {
			copyRefs(v.Index(i))
		}
	case reflect.Interface:
		if v.IsNil() {
			return
		}
		c := reflect.New(v.Elem().Type()).Elem()
		c.Set(v.Elem())
		copyRefs(c)
		v.Set(c)
	}
}

// hasRefs says whether values of t can hold a reference to copy.
func hasRefs(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Pointer, reflect.Slice, reflect.Map, reflect.Interface:
		return true
	case reflect.Struct:
		for i := range t.NumField() {
			if f := t.Field(i); f.IsExported() && hasRefs(f.Type) {
				return true
			}
		}
	case reflect.Array:
		return hasRefs(t.Elem())
	}
	return false
}
