// Package fill sets every field reachable from a value to something that is
// not zero: tests of generated (un)marshalers use it so that a field the
// generated code does not know (a type changed without a regeneration) is
// lost on the way and their comparison fails.
package fill

import (
	"fmt"
	"reflect"
	"strings"
)

// Fill fills v (settable) and everything under it; path names v in errors
// and seeds the values, so that siblings differ.
func Fill(v reflect.Value, path string) error {
	switch v.Kind() {
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		return Fill(v.Elem(), path)
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			f := v.Type().Field(i)
			if f.IsExported() && f.Tag.Get("json") != "-" {
				if err := Fill(v.Field(i), path+"."+f.Name); err != nil {
					return err
				}
			}
		}
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 2, 2))
		for i := 0; i < 2; i++ {
			if err := Fill(v.Index(i), path+"[]"); err != nil {
				return err
			}
		}
	case reflect.Map:
		v.Set(reflect.MakeMap(v.Type()))
		k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
		if err := Fill(k, path+"{key}"); err != nil {
			return err
		}
		if err := Fill(e, path+"{}"); err != nil {
			return err
		}
		v.SetMapIndex(k, e)
	case reflect.String:
		v.SetString("v" + strings.ReplaceAll(path, ".", "/"))
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(int64(len(path) % 100))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(uint64(len(path)%100 + 1))
	case reflect.Float32, reflect.Float64:
		v.SetFloat(0.5)
	case reflect.Interface:
		// Free-form JSON (Windows' credentialSpec), decoded as a map.
		v.Set(reflect.ValueOf(map[string]any{"k": path}))
	default:
		return fmt.Errorf("%s: kind %s: teach fill about it", path, v.Kind())
	}
	return nil
}
