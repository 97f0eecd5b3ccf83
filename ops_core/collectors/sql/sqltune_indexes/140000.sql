-- SQL Tuning Advisor: the valid indexes of one table and their key columns, in order.
SELECT /* opscore */ i.indexrelid::regclass::text AS index_name,
       array(SELECT a.attname::text FROM unnest(i.indkey) WITH ORDINALITY k(attnum, ord)
               JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
              ORDER BY k.ord) AS columns
  FROM pg_index i
 WHERE i.indrelid = to_regclass(%(table)s) AND i.indisvalid
