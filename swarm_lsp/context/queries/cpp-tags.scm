; C++ tags. Based on tree-sitter-cpp's queries/tags.scm (MIT), with the whole function
; definition as the definition node (for signatures), namespaces, in-class methods,
; templates, call and type references and #include captures added for swarm-lsp.

(function_definition
  declarator: (function_declarator
    declarator: (qualified_identifier name: (identifier) @name.definition.method))) @definition.method

(function_definition
  declarator: (function_declarator declarator: (field_identifier) @name.definition.method)) @definition.method

(field_declaration
  declarator: (function_declarator declarator: (field_identifier) @name.definition.method)) @definition.method

(function_definition
  declarator: (function_declarator declarator: (identifier) @name.definition.function)) @definition.function

(function_definition
  declarator: (_ (function_declarator declarator: (identifier) @name.definition.function))) @definition.function

(declaration
  declarator: (function_declarator declarator: (identifier) @name.definition.function)) @definition.function

(class_specifier name: (type_identifier) @name.definition.class body: (_)) @definition.class

(struct_specifier name: (type_identifier) @name.definition.class body: (_)) @definition.class

(union_specifier name: (type_identifier) @name.definition.class body: (_)) @definition.class

(enum_specifier name: (type_identifier) @name.definition.type body: (_)) @definition.type

(type_definition declarator: (type_identifier) @name.definition.type) @definition.type

(alias_declaration name: (type_identifier) @name.definition.type) @definition.type

(namespace_definition name: (namespace_identifier) @name.definition.module) @definition.module

(preproc_def name: (identifier) @name.definition.macro) @definition.macro

(preproc_function_def name: (identifier) @name.definition.macro) @definition.macro

(call_expression
  function: [
    (identifier) @name.reference.call
    (field_expression field: (field_identifier) @name.reference.call)
    (qualified_identifier name: (identifier) @name.reference.call)
    (template_function name: (identifier) @name.reference.call)
    (qualified_identifier name: (template_function name: (identifier) @name.reference.call))
  ]) @reference.call

(base_class_clause (type_identifier) @name.reference.class) @reference.class

((type_identifier) @name.reference.type) @reference.type

(preproc_include path: (string_literal (string_content) @name.import.module)) @import

(preproc_include path: (system_lib_string) @name.import.module) @import
